// Bad options are coded errors naming the field; defaults as documented.
import t from 'tap'
import { FlowTagError } from '@flowtag/errors'
import { createShadowComparer, ShadowError } from '../src/index.ts'
import { parseShadowOptions } from '../src/options.ts'
import { json, pair } from './fixtures/answers.ts'

t.test('defaults', async (t) => {
  const o = parseShadowOptions(undefined)
  t.same(o.headers, [])
  t.equal(o.maxBodyBytes, 1024 * 1024)
  t.same(o.ignore, [])
  t.same(o.normalize, [])
  t.same(o.learn, { samples: 20, rate: 0.05, margin: 0.05 })
  t.equal(o.maxRoutes, 1000)
  t.equal(o.maxFields, 100)
  t.same(parseShadowOptions({ headers: ['X-Version'] }).headers, ['x-version'], 'header names lower-cased')
})

t.test('bad options name their field', async (t) => {
  const cases: Array<[unknown, string]> = [
    [{ headers: ['bad header'] }, 'headers.0'],
    [{ maxBodyBytes: 0 }, 'maxBodyBytes'],
    [{ maxBodyBytes: 1.5 }, 'maxBodyBytes'],
    [{ ignore: ['a/b'] }, 'ignore.0'],
    [{ normalize: [{ path: '/a', round: -1 }] }, 'normalize.0.round'],
    [{ normalize: [{ path: '/a', as: 'upper' }] }, 'normalize.0.as'],
    [{ learn: { samples: 0 } }, 'learn.samples'],
    [{ learn: { rate: 2 } }, 'learn.rate'],
    [{ learn: { margin: -1 } }, 'learn.margin'],
    [{ learn: true }, 'learn'],
    [{ meter: {} }, 'meter'],
    [{ maxRoutes: 0 }, 'maxRoutes'],
    [{ maxFields: 0 }, 'maxFields'],
    [{ ignored: [] }, 'ignored']
  ]
  for (const [input, field] of cases) {
    t.throws(() => createShadowComparer(input as never), { code: 'FLOWTAG_SHADOW_BAD_OPTION', field, message: new RegExp(`^@flowtag/shadow: invalid option "${field.replace(/\./g, '\\.')}"`) }, field)
  }
  try {
    createShadowComparer({ ignored: [] } as never)
  } catch (err) {
    t.ok(err instanceof ShadowError && err instanceof FlowTagError)
    t.match((err as Error).message, /did you mean "ignore"\?/)
  }
})

t.test('a comparer with every option', async (t) => {
  const c = createShadowComparer({ headers: ['x-a'], maxBodyBytes: 100, ignore: ['', '/**'], normalize: [{ path: '/**', as: 'type' }], learn: { samples: 1, rate: 0, margin: 0 }, maxRoutes: 1, maxFields: 1 })
  c.compare({ ...pair(json({ a: 1 }), json({ a: 2 })), secondary: json({ a: 1 }) })
  t.equal(c.report().routes[0]!.diverged, 0, 'the root ignored: no body field compared')
})
