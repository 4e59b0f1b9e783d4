// Noise, both ways: learned from a second answer of the stable lane (Diffy's baseline) and
// declared (ignore / normalize by JSON-pointer pattern). A real difference is still found, with
// its field path.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createShadowComparer, type ShadowCompare, type ShadowPair } from '../src/index.ts'
import { json, pair } from './fixtures/answers.ts'

/** v1's answer for a user: a fresh timestamp and request id on every call, as real services do. */
const v1 = (id: number) => json({ id, name: `user ${id}`, tier: 'gold', at: new Date(Date.now() + Math.floor(Math.random() * 1e6)).toISOString(), meta: { requestId: randomUUID(), items: [{ sku: 'a', seen: Math.random() }] } })
/** v2: the same, except that every fifth user gets another tier (the bug to find). */
const v2 = (id: number) => {
  const a = JSON.parse(v1(id).body.toString())
  if (id % 5 === 0) a.tier = 'silver'
  return json(a)
}

/** Drive the comparer as the mirror sender does: a secondary answer whenever it is asked for one. */
function drive (c: ShadowCompare, n: number, mirror: (id: number) => ReturnType<typeof json>, extra: Partial<ShadowPair> = {}) {
  let secondaries = 0
  for (let id = 1; id <= n; id++) {
    const p = pair(v1(id), mirror(id), extra)
    if (c.needsSecondary(p.service, p.route)) {
      p.secondary = v1(id)
      secondaries++
    }
    c.compare(p)
  }
  return secondaries
}

t.test('learned: the changed field is found with its path; timestamps and ids are not flagged once learned', async (t) => {
  const c = createShadowComparer({ learn: { samples: 20, rate: 0.05 } })
  drive(c, 500, v2)
  const r = c.report().routes[0]!
  t.equal(r.learning, 19, 'the pairs before the 20th secondary learn the noise and are not judged')
  t.equal(r.compared, 481, 'from the 20th on, every pair is judged')
  t.equal(r.diverged, 97, 'exactly the users 20..500 whose tier differs')
  t.same(r.fields, [{ field: '/tier', count: 97 }], 'only /tier, never the timestamp, id or the random item field')
  t.same(r.noise.map((n) => n.field).sort(), ['/at', '/meta/items/*/seen', '/meta/requestId'])
  t.ok(r.noise.every((n) => n.rate === 1))
  t.ok(r.secondaries >= 20)
})

t.test('learned: without a real change nothing diverges; before learning nothing is judged', async (t) => {
  const c = createShadowComparer()
  drive(c, 10, v1)
  let r = c.report().routes[0]!
  t.equal(r.learning, 10)
  t.equal(r.compared, 0)
  t.equal(r.divergence, 0)
  drive(c, 200, v1)
  r = c.report().routes[0]!
  t.equal(r.learning, 19)
  t.equal(r.compared, 191)
  t.equal(r.diverged, 0)
})

t.test('the same noise without learning is flagged: learning is what hides it', async (t) => {
  const c = createShadowComparer({ learn: false })
  drive(c, 50, v1)
  const r = c.report().routes[0]!
  t.equal(r.compared, 50)
  t.equal(r.diverged, 50)
  t.same(r.fields.map((f) => f.field).sort(), ['/at', '/meta/items/*/seen', '/meta/requestId'])
})

t.test('declared: ignore patterns (* one segment, ** any depth) hide the noise; the changed field is still found', async (t) => {
  const c = createShadowComparer({ learn: false, ignore: ['/at', '/meta/requestId', '/**/seen'] })
  drive(c, 100, v2)
  const r = c.report().routes[0]!
  t.equal(r.compared, 100)
  t.equal(r.diverged, 20)
  t.same(r.fields, [{ field: '/tier', count: 20 }])
  const d = createShadowComparer({ learn: false, ignore: ['/*', '/meta/**'] })
  drive(d, 20, v2)
  t.equal(d.report().routes[0]!.diverged, 0, '/* covers every top-level field, /meta/** everything under meta')
  const e = createShadowComparer({ learn: false, ignore: ['/meta/items/*/seen', '/at', '/meta/requestId', '/tier'] })
  drive(e, 20, v2)
  t.equal(e.report().routes[0]!.diverged, 0)
})

t.test('declared: normalize rules', async (t) => {
  const c = createShadowComparer({
    learn: false,
    normalize: [
      { path: '/price', round: 2 },
      { path: '/name', as: 'trim' },
      { path: '/code', as: 'lowercase' },
      { path: '/tags', as: 'sorted' },
      { path: '/token', as: 'length' },
      { path: '/at', as: 'type' }
    ]
  })
  c.compare(pair(
    json({ price: 1.004, name: ' Ann ', code: 'AB', tags: ['b', { x: 1 }, 'a'], token: 'abc', at: '2026-01-01' }),
    json({ price: 1.001, name: 'Ann', code: 'ab', tags: ['a', 'b', { x: 1 }], token: 'xyz', at: '2027-05-05' })
  ))
  let r = c.report().routes[0]!
  t.equal(r.diverged, 0, 'equal once normalised')
  c.compare(pair(json({ price: 1.01, token: 'abc', at: 'x', tags: ['a'] }), json({ price: 1.02, token: 'abcd', at: 1, tags: ['a', 'a'] })))
  r = c.report().routes[0]!
  t.same(r.fields.map((f) => f.field).sort(), ['/at', '/price', '/tags/*', '/token'], 'still different once normalised')
  // A rule meets a value of another type: the value is compared as it is.
  const d = createShadowComparer({ learn: false, normalize: ['round', 'trim', 'lowercase', 'sorted', 'length'].map((r) => (r === 'round' ? { path: '/v', round: 0 } : { path: '/v', as: r as 'trim' })) })
  d.compare(pair(json({ v: true }), json({ v: false })))
  d.compare(pair(json({ v: { a: 1 } }), json({ v: { a: 1 } })))
  t.same(d.report().routes[0]!.fields, [{ field: '/v', count: 1 }])
})

t.test('learned noise needs the mirror to differ no more than the stable lane does (margin)', async (t) => {
  // A field that differs between two stable answers 1 time in 10 is noise when the mirror differs
  // as often, but not when the mirror differs every time.
  const c = createShadowComparer({ learn: { samples: 100, rate: 1, margin: 0.05 } })
  const flaky = (i: number) => json({ v: i % 10 === 0 ? 'a' : 'b' })
  for (let i = 0; i < 300; i++) c.compare({ ...pair(json({ v: 'b' }), flaky(i), { route: '/same' }), secondary: flaky(i) })
  for (let i = 0; i < 300; i++) c.compare({ ...pair(json({ v: 'b' }), json({ v: 'c' }), { route: '/worse' }), secondary: flaky(i) })
  const by = Object.fromEntries(c.report().routes.map((r) => [r.route, r]))
  t.equal(by['/same']!.compared, 201)
  t.equal(by['/same']!.diverged, 0, 'as noisy as stable: noise')
  t.same(by['/same']!.noise, [{ field: '/v', rate: 0.1 }])
  t.equal(by['/worse']!.diverged, 201, 'always different: flagged, though stable is a little noisy there')
  t.same(by['/worse']!.fields, [{ field: '/v', count: 201 }])
  t.same(by['/worse']!.noise, [], 'not noise there')
})

t.test('needsSecondary: every pair until learn.samples, then about learn.rate; never without learning', async (t) => {
  const c = createShadowComparer({ learn: { samples: 5, rate: 0.05 } })
  for (let i = 0; i < 5; i++) {
    t.equal(c.needsSecondary('user-service', '/users/:id'), true)
    c.compare({ ...pair(json({}), json({})), secondary: json({}) })
  }
  let asked = 0
  for (let i = 0; i < 4000; i++) if (c.needsSecondary('user-service', '/users/:id')) asked++
  t.ok(asked > 100 && asked < 320, `about 5% of 4000 (${asked})`)
  t.equal(c.needsSecondary('user-service', '/other'), true, 'another route learns on its own')
  const off = createShadowComparer({ learn: false })
  t.equal(off.needsSecondary('user-service', '/users/:id'), false)
  off.compare({ ...pair(json({ a: 1 }), json({ a: 2 })), secondary: json({ a: 2 }) })
  t.equal(off.report().routes[0]!.secondaries, 0, 'a secondary is not used without learning')
  t.equal(off.report().routes[0]!.diverged, 1)
  const never = createShadowComparer({ learn: { samples: 1, rate: 0 } })
  never.compare({ ...pair(json({}), json({})), secondary: json({}) })
  for (let i = 0; i < 100; i++) t.equal(never.needsSecondary('user-service', '/users/:id'), false)
})
