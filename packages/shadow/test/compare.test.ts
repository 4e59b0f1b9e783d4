// One pair's differences: status, chosen headers, JSON bodies structurally, other bodies byte for
// byte, caps. Learning is off here (every pair judged at once): noise has its own tests.
import t from 'tap'
import { createShadowComparer, type ShadowCompare } from '../src/index.ts'
import { json, pair, text } from './fixtures/answers.ts'

function fieldsOf (c: ShadowCompare) {
  const r = c.report().routes[0]!
  return Object.fromEntries(r.fields.map((f) => [f.field, f.count]))
}

t.test('key order and 1 vs 1.0 are no difference; the field that differs is named by its pointer', async (t) => {
  const c = createShadowComparer({ learn: false })
  c.compare(pair(json('{"a":1,"b":{"x":"y","n":2.50}}'), json('{"b":{"n":2.5,"x":"y"},"a":1.0}')))
  let r = c.report().routes[0]!
  t.equal(r.compared, 1)
  t.equal(r.diverged, 0, 'same JSON, other order and number spelling')
  c.compare(pair(json({ a: 1, b: { x: 'y', n: 2.5 } }), json({ a: 1, b: { x: 'z', n: 2.5 } })))
  r = c.report().routes[0]!
  t.equal(r.diverged, 1)
  t.equal(r.divergence, 0.5)
  t.same(r.fields, [{ field: '/b/x', count: 1 }])
})

t.test('types, missing keys, arrays by index (indices as *), escaped keys', async (t) => {
  const c = createShadowComparer({ learn: false })
  c.compare(pair(
    json({ n: 1, s: 'a', gone: true, items: [{ p: 1 }, { p: 2 }], 'a/b': 1, 'm~n': 1, z: null }),
    json({ n: '1', s: 'a', added: 1, items: [{ p: 1 }, { p: 3 }, { p: 4 }], 'a/b': 2, 'm~n': 2, z: {} })
  ))
  t.same(Object.keys(fieldsOf(c)).sort(), ['/a~1b', '/added', '/gone', '/items/*', '/items/*/p', '/m~0n', '/n', '/z'].sort())
})

t.test('status and chosen headers; headers not chosen are not compared', async (t) => {
  const c = createShadowComparer({ learn: false, headers: ['X-Version', 'cache-control'] })
  c.compare(pair(json({}, 200, { 'x-version': '1', date: 'a' }), json({}, 200, { 'x-version': '2', date: 'b' })))
  c.compare(pair(json({}, 200), json({}, 503)))
  c.compare(pair({ ...json({}), headers: { 'content-type': 'application/json', 'cache-control': ['a', 'b'] } }, { ...json({}), headers: { 'content-type': 'application/json', 'cache-control': 'a, b' } }))
  t.same(fieldsOf(c), { 'header:x-version': 1, status: 1 })
})

t.test('other bodies byte for byte; JSON that does not parse, or JSON against text, is the body', async (t) => {
  const c = createShadowComparer({ learn: false })
  c.compare(pair(text('hello'), text('hello')))
  c.compare(pair(text('hello'), text('hellO')))
  c.compare(pair(json('{"a":'), json('{"a":1}')))
  c.compare(pair(json({ a: 1 }), text('{"a": 1}')))
  // +json is JSON: other spacing, the same document.
  c.compare(pair(json('{"a":1}'), json('{ "a": 1.0 }', 200, { 'content-type': 'application/problem+json' })))
  const r = c.report().routes[0]!
  t.equal(r.compared, 5)
  t.equal(r.diverged, 3)
  t.same(r.fields, [{ field: 'body', count: 3 }])
})

t.test('caps: a body over maxBodyBytes or truncated is compared byte for byte over what was captured, and counted', async (t) => {
  const c = createShadowComparer({ learn: false, maxBodyBytes: 16 })
  const big = { a: 1, b: 'x'.repeat(100) }
  // The same JSON in another key order: equal structurally, but over the cap it is bytes.
  c.compare(pair(json(big), json({ b: big.b, a: 1 })))
  // Over the cap, differing only after the cap: the captured prefix is the same.
  c.compare(pair(text('0123456789abcdef-tail-one'), text('0123456789abcdef-tail-two')))
  // Truncated by the sender, same captured bytes.
  c.compare(pair({ ...text('0123'), truncated: true }, text('0123')))
  const r = c.report().routes[0]!
  t.equal(r.truncated, 3)
  t.equal(r.compared, 3)
  t.equal(r.diverged, 1)
  t.same(r.fields, [{ field: 'body', count: 1 }])
})

t.test('deep nesting is compared without recursing past the depth cap; maxFields bounds the fields', async (t) => {
  const c = createShadowComparer({ learn: false, maxFields: 3 })
  const deep = (leaf: number) => '['.repeat(5000) + String(leaf) + ']'.repeat(5000)
  c.compare(pair(json(deep(1)), json(deep(2))))
  c.compare(pair(json('{"k":' + '{"a":'.repeat(80) + '{"x":1,"y":2}' + '}'.repeat(80) + '}'), json('{"k":' + '{"a":'.repeat(80) + '{"y":2,"x":1}' + '}'.repeat(80) + '}')))
  let r = c.report().routes[0]!
  t.equal(r.diverged, 1, 'only the first differs; past the cap, key order still does not count')
  t.match(r.fields[0]!.field, /^(\/\*){64}$/)
  const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]))
  const other = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i + 1]))
  c.compare(pair(text('a'), text('b')))
  c.compare(pair(json({ q: 1, ...many }), json({ q: 2, ...other })))
  r = c.report({ fields: 100 }).routes[0]!
  t.equal(r.fields.filter((f) => f.field !== '(other)').length, 3, 'at most maxFields named fields per route')
  t.ok(r.fields.some((f) => f.field === '(other)'), 'the rest under (other)')
})

t.test('routes: per service, route and lane, most diverging first; maxRoutes lumps the rest', async (t) => {
  const c = createShadowComparer({ learn: false, maxRoutes: 2 })
  c.compare(pair(json({ a: 1 }), json({ a: 1 }), { route: '/a' }))
  c.compare(pair(json({ a: 1 }), json({ a: 2 }), { route: '/b' }))
  c.compare(pair(json({ a: 1 }), json({ a: 2 }), { route: '/c' }))
  c.compare(pair(json({ a: 1 }), json({ a: 1 }), { route: '/d' }))
  const routes = c.report().routes
  t.same(routes.map((r) => [r.route, r.compared, r.diverged]), [['/b', 1, 1], ['(other)', 2, 1], ['/a', 1, 0]])
  t.same(c.report({ top: 1 }).routes.length, 1)
})

t.test('a pair that is not a ShadowPair is a coded error naming the field', async (t) => {
  const c = createShadowComparer()
  const good = pair(json({}), json({}))
  t.throws(() => c.compare(null as never), { code: 'FLOWTAG_SHADOW_BAD_PAIR', field: 'pair' })
  t.throws(() => c.compare({ ...good, route: 1 } as never), { code: 'FLOWTAG_SHADOW_BAD_PAIR', field: 'route' })
  t.throws(() => c.compare({ ...good, mirror: undefined } as never), { code: 'FLOWTAG_SHADOW_BAD_PAIR', field: 'mirror' })
  t.throws(() => c.compare({ ...good, mirror: { ...good.mirror, body: 'x' } } as never), { code: 'FLOWTAG_SHADOW_BAD_PAIR', field: 'mirror.body', message: /invalid pair field "mirror.body": expected a Buffer/ })
  t.throws(() => c.compare({ ...good, primary: { ...good.primary, status: '200' } } as never), { code: 'FLOWTAG_SHADOW_BAD_PAIR', field: 'primary.status' })
  t.throws(() => c.compare({ ...good, primary: { ...good.primary, headers: null } } as never), { code: 'FLOWTAG_SHADOW_BAD_PAIR', field: 'primary.headers' })
  t.throws(() => c.compare({ ...good, secondary: { ...good.primary, truncated: 0 } } as never), { code: 'FLOWTAG_SHADOW_BAD_PAIR', field: 'secondary.truncated' })
  t.equal(c.report().routes.length, 0, 'nothing counted')
})
