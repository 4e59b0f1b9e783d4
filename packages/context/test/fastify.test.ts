import Fastify from 'fastify'
import t from 'tap'
import { createRuleStore, staticSource } from '@flowtag/rules'
import { fastifyFlowTag, FlowTagger } from '../src/fastify.ts'
import { currentFlow, currentTag, errorCodes, signTag, type FlowContext } from '../src/index.ts'
import { buildApp, type LogLine } from './fixtures/app.ts'

const rules = {
  version: 1,
  user: { header: 'x-user-id' },
  rules: [
    { name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' },
    { name: 'canary', split: { weights: { v2: 50 } } }
  ],
  default: 'v1'
}
const key = { id: 'k1', secret: 'a-long-enough-secret-1' }
const oldKey = { id: 'k0', secret: 'the-previous-secret-0' }

async function flowOf (app: Awaited<ReturnType<typeof buildApp>>, headers: Record<string, string>, url = '/flow'): Promise<{ flow: FlowContext, als: FlowContext | null, status: number }> {
  const res = await app.inject({ method: 'GET', url, headers })
  return { ...res.json(), status: res.statusCode }
}

t.test('edge mode: rules decide; request.flow and ALS agree; incoming tags ignored', async (t) => {
  const logs: LogLine[] = []
  const app = await buildApp({ mode: 'edge', rules }, logs)
  t.teardown(() => app.close())
  const a = await flowOf(app, { 'x-tester': 'yes' })
  t.same(a.flow, { tag: 'v2', decision: { tag: 'v2', rule: 'testers', reason: 'rule "testers" matched' }, ruleVersion: 1, baggage: {} })
  t.same(a.als, a.flow, 'handler runs inside the flow')
  const b = await flowOf(app, { 'x-flow-tag': 'evil', 'x-user-id': 'u1' })
  t.not(b.flow.tag, 'evil', 'a plain x-flow-tag is ignored at the edge by default')
  t.ok(['v1', 'v2'].includes(b.flow.tag!))
  const again = await flowOf(app, { 'x-flow-tag': 'evil', 'x-user-id': 'u1' })
  t.equal(again.flow.tag, b.flow.tag, 'sticky')
  t.equal(app.flowTagger.stats.ignored, 2)
  t.equal(app.flowTagger.stats.evaluated, 3)
  t.ok(logs.some((l) => l.msg === 'flowtag: incoming tag refused'), 'debug log')
  t.notOk(JSON.stringify(logs).includes('evil'), 'the refused value is never logged')
  t.equal(app.flowTagger.mode, 'edge')

  // The old name stays for a minor version: the same tagger, one DeprecationWarning.
  const warnings: Array<{ name: string; code?: string }> = []
  const onWarning = (w: Error & { code?: string }) => { warnings.push({ name: w.name, code: w.code }) }
  process.on('warning', onWarning)
  t.equal(app.flowTag, app.flowTagger)
  t.equal(app.flowTag.stats.evaluated, 3)
  await new Promise((resolve) => setImmediate(resolve))
  process.off('warning', onWarning)
  t.same(warnings, [{ name: 'DeprecationWarning', code: 'FLOWTAG_DEP_FLOWTAG' }], 'warned once')
})

t.test('edge mode with a live RuleStore: swaps apply to the next request, no restart', async (t) => {
  const source = staticSource({ ...rules, rules: [], default: 'blue' })
  const store = createRuleStore({ source })
  await store.ready
  const app = await buildApp({ mode: 'edge', rules: store })
  t.teardown(async () => { await app.close(); await store.close() })
  t.equal((await flowOf(app, {})).flow.tag, 'blue')
  source.set({ ...rules, version: 2, rules: [], default: 'green' })
  t.equal((await flowOf(app, {})).flow.tag, 'green', 'blue-green switch')
  source.set('{ broken')
  t.equal((await flowOf(app, {})).flow.tag, 'green', 'a bad document changes nothing')
  const empty = createRuleStore({ source: staticSource(undefined) })
  await empty.ready
  const app2 = await buildApp({ mode: 'edge', rules: empty })
  t.teardown(async () => { await app2.close(); await empty.close() })
  const none = await flowOf(app2, {})
  t.equal(none.status, 200)
  t.same(none.flow, { baggage: {} }, 'no rules in force yet: untagged, never an error')
})

t.test('service mode trusts the incoming tag and carries baggage; bad tags dropped, never a 500, never echoed', async (t) => {
  const logs: LogLine[] = []
  const app = await buildApp({ mode: 'service' }, logs)
  t.teardown(() => app.close())
  const a = await flowOf(app, { 'x-flow-tag': 'v2', baggage: 'tenant=acme,flowtag.lane=v2' })
  t.same(a.flow, { tag: 'v2', decision: { tag: 'v2', reason: 'trusted incoming tag' }, baggage: { tenant: 'acme' } })
  t.equal((await flowOf(app, { baggage: 'flowtag.lane=from-baggage' })).flow.tag, 'from-baggage')
  t.same((await flowOf(app, {})).flow, { baggage: {} }, 'no tag, no rules: untagged')
  for (const bad of ['', 'has space', 'x'.repeat(65), '<script>alert(1)</script>', 'ünïcode', 'a/b', 'a,b']) {
    const res = await app.inject({ method: 'GET', url: '/flow', headers: { 'x-flow-tag': bad } })
    t.equal(res.statusCode, 200, `${JSON.stringify(bad)}: not an error`)
    t.equal(res.json().flow.tag, undefined, `${JSON.stringify(bad)}: dropped`)
    if (bad.length > 0) t.notOk(res.body.includes(bad) || JSON.stringify(res.headers).includes(bad), 'not echoed')
  }
  t.equal(app.flowTagger.stats.dropped, 7)
  t.notOk(logs.some((l) => JSON.stringify(l).includes('script')), 'not logged')
})

t.test('trust from listed CIDRs only', async (t) => {
  const app = await buildApp({ mode: 'edge', rules, trust: { cidrs: ['127.0.0.0/8', '::1/128'] } })
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/flow', headers: { 'x-flow-tag': 'v7' }, remoteAddress: '127.0.0.1' })).json().flow.tag, 'v7')
  t.equal((await app.inject({ url: '/flow', headers: { 'x-flow-tag': 'v7' }, remoteAddress: '::ffff:127.0.0.5' })).json().flow.tag, 'v7')
  const outside = (await app.inject({ url: '/flow', headers: { 'x-flow-tag': 'v7', 'x-tester': 'yes' }, remoteAddress: '203.0.113.9' })).json().flow
  t.equal(outside.tag, 'v2', 'outside the list: the rules decide')
})

t.test('signed tags: by header, cookie or link; rotation; plain tags ignored', async (t) => {
  const app = await buildApp({ mode: 'edge', rules, trust: { signed: { keys: [key, oldKey] } } })
  t.teardown(() => app.close())
  const token = signTag('qa-7', 600, key)
  t.match((await flowOf(app, { 'x-flow-tag': token })).flow, { tag: 'qa-7', decision: { reason: 'signed tag (key k1, from header)' } })
  t.equal((await flowOf(app, { cookie: `other=1; flowtag=${token}` })).flow.tag, 'qa-7', 'cookie')
  t.equal((await flowOf(app, {}, `/flow?flowtag=${encodeURIComponent(token)}`)).flow.tag, 'qa-7', 'link')
  t.equal((await flowOf(app, { 'x-flow-tag': signTag('qa-old', 600, oldKey) })).flow.tag, 'qa-old', 'an older key still verifies')
  const expired = signTag('qa-7', 1, key, Date.now() - 10_000)
  t.not((await flowOf(app, { 'x-flow-tag': expired })).flow.tag, 'qa-7', 'expired')
  const forged = token.replace('qa-7', 'qa-8')
  t.not((await flowOf(app, { 'x-flow-tag': forged })).flow.tag, 'qa-8', 'forged lane')
  const other = signTag('qa-9', 600, { id: 'k1', secret: 'some-other-secret-xx' })
  t.not((await flowOf(app, { 'x-flow-tag': other })).flow.tag, 'qa-9', 'wrong secret')
  t.not((await flowOf(app, { 'x-flow-tag': 'qa-7' })).flow.tag, 'qa-7', 'plain tag ignored')
  t.equal(app.flowTagger.stats.signed, 4)
  t.equal(app.flowTagger.stats.dropped, 3)
  t.equal(app.flowTagger.stats.ignored, 1)
})

t.test("Fastify's own register options are not mistaken for ours", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyFlowTag, { mode: 'service', logLevel: 'warn', prefix: '/x' } as never)
  app.get('/t', async (req) => req.flow.tag ?? null)
  t.equal((await app.inject({ url: '/t', headers: { 'x-flow-tag': 'v1' } })).body, 'v1')
})

t.test('options are validated at registration with a coded error naming the field', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /mode/],
    [{ mode: 'gateway' }, /mode/],
    [{ mode: 'edge' }, /rules/],
    [{ mode: 'edge', rules: { version: 1 } }, /default/],
    [{ mode: 'service', trust: 'sometimes' }, /trust/],
    [{ mode: 'service', trust: { cidrs: ['nope'] } }, /trust\.cidrs\.0/],
    [{ mode: 'service', trust: {} }, /cidrs and\/or signed/],
    [{ mode: 'service', trust: { signed: { keys: [{ id: 'k', secret: 'short' }] } } }, /secret/],
    [{ mode: 'service', trust: { signed: { keys: [key, key] } } }, /duplicate key id/],
    [{ mode: 'service', otel: 'yes' }, /otel/],
    [{ mode: 'service', extra: 1 }, /extra/]
  ]
  for (const [opts, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifyFlowTag, opts as never).ready() }, { code: errorCodes.BAD_OPTION, message }, JSON.stringify(opts))
    await app.close()
  }
})

t.test('a bad trusted block is named by its index, as data', async (t) => {
  const app = Fastify()
  await t.rejects(async () => { await app.register(fastifyFlowTag, { mode: 'service', trust: { cidrs: ['10.0.0.0/8', '10.1.0.0/99'] } }).ready() }, {
    code: errorCodes.BAD_OPTION,
    field: 'trust.cidrs.1',
    path: ['trust', 'cidrs', 1],
    problem: 'not a valid IPv4/IPv6 CIDR: "10.1.0.0/99"',
    message: '@flowtag/context: invalid option "trust.cidrs.1": not a valid IPv4/IPv6 CIDR: "10.1.0.0/99"'
  })
  await app.close()
})

t.test('tagger: an existing tagger is used and decorated; laneLogger puts the lane on the request log', async (t) => {
  const tagger = new FlowTagger({ mode: 'edge', rules })
  const logs: LogLine[] = []
  const app = await buildApp({ tagger, laneLogger: true }, logs)
  app.get('/log', async (req) => { req.log.info('handled'); return 'ok' })
  t.teardown(() => app.close())
  t.equal(app.flowTagger, tagger, 'the given tagger, not a new one')
  t.equal((await flowOf(app, { 'x-tester': 'yes' })).flow.tag, 'v2')
  t.equal(tagger.stats.evaluated, 1, 'the given tagger decided')
  await app.inject({ url: '/log', headers: { 'x-tester': 'yes' } })
  const handled = logs.find((l) => l.msg === 'handled')
  t.match(handled?.obj, { lane: 'v2' }, 'the handler\'s log line names the lane')

  const plain: LogLine[] = []
  const off = await buildApp({ mode: 'edge', rules }, plain)
  off.get('/log', async (req) => { req.log.info('handled'); return 'ok' })
  t.teardown(() => off.close())
  await off.inject({ url: '/log', headers: { 'x-tester': 'yes' } })
  t.notOk(Object.hasOwn(plain.find((l) => l.msg === 'handled')?.obj as object, 'lane'), 'no lane without laneLogger')
})

t.test('tagger and laneLogger are checked: a coded error naming the field', async (t) => {
  const tagger = new FlowTagger({ mode: 'service' })
  const cases: Array<[unknown, string]> = [
    [{ tagger: { decide () {} } }, 'tagger'],
    [{ tagger, mode: 'edge' }, 'tagger'],
    [{ mode: 'service', laneLogger: 'yes' }, 'laneLogger']
  ]
  for (const [opts, field] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(fastifyFlowTag, opts as never).ready() }, { code: errorCodes.BAD_OPTION, field }, field)
    await app.close()
  }
})

t.test('re-enters the flow when a hook continues the request from a foreign async context', async (t) => {
  const app = Fastify()
  // Fastify keeps the context through its own body parsing (content-type-parser AsyncResource);
  // a preParsing hook that resumes from a timer created outside any request does not.
  const pending: Array<() => void> = []
  const pump = setInterval(() => { for (const f of pending.splice(0)) f() }, 2)
  t.teardown(async () => { clearInterval(pump); await app.close() })
  await app.register(fastifyFlowTag, { mode: 'service' })
  let seenInHook: string | null = 'unset'
  app.addHook('preParsing', (_req, _reply, payload, done) => {
    pending.push(() => { seenInHook = currentTag() ?? null; done(null, payload) })
  })
  app.post('/x', async (req) => ({ als: currentFlow()?.tag ?? null, body: req.body }))
  const res = await app.inject({ method: 'POST', url: '/x', headers: { 'x-flow-tag': 'v5', 'content-type': 'application/json' }, payload: '{"a":1}' })
  t.equal(seenInHook, null, 'the hook resumed without the flow')
  t.same(res.json(), { als: 'v5', body: { a: 1 } }, 'the handler has it back')
})
