// The preset end to end on loopback: the Nacos dev server, a Fastify edge, user-service v1 on
// Fastify and v2 on Express, rules from the config center.
import { Writable } from 'node:stream'
import { FlowTagError } from '@flowtag/errors'
import { NacosClient } from '@flowtag/nacos'
import express from 'express'
import Fastify from 'fastify'
import t from 'tap'
import { flowTagService } from '../src/express.ts'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { createFlowTagService } from '../src/index.ts'
import { fastClient, startDev, testerRules } from './fixtures/nacos.ts'
import { waitFor } from '@flowtag/test-kit'
import { STARTED_AT_METADATA } from '@flowtag/outbound'

const RULES = { dataId: 'rules.json', group: 'FLOWTAG' }

async function world (t: { teardown(fn: () => unknown): void }) {
  const dev = await startDev()
  t.teardown(() => dev.close())
  // The admin watches instances leave: empty-list protection (on by default) would hold them.
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
  t.teardown(() => admin.close())
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify(testerRules), 'json')
  return { dev, admin, nacos: { serverAddr: dev.address, ...fastClient } }
}

t.test('Fastify and Express services register; the edge tags by rule and calls by name; the lane arrives', async (t) => {
  const { admin, nacos } = await world(t)
  const before = Date.now()

  const v1 = Fastify({ return503OnClosing: false })
  await v1.register(fastifyFlowTagService, { service: 'user-service', version: 'v1', nacos, rules: RULES })
  v1.get('/who', async (request) => ({ version: 'v1', lane: request.flow.tag ?? null, header: request.headers['x-flow-tag'] ?? null }))
  await v1.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => v1.close())

  const app = express()
  const ft = flowTagService({ service: 'user-service', version: 'v2', nacos, rules: RULES, signals: false })
  app.use(ft)
  app.get('/who', (req, res) => { res.json({ version: 'v2', lane: req.flow.tag ?? null, header: req.headers['x-flow-tag'] ?? null }) })
  const server = await ft.listen(app, { port: 0, host: '127.0.0.1' })
  t.teardown(() => ft.close())
  const v2Port = (server.address() as { port: number }).port

  const lines: string[] = []
  const gateway = Fastify({ logger: { stream: new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } }) } })
  await gateway.register(fastifyFlowTagService, { service: 'gateway', mode: 'edge', nacos, rules: RULES, registration: false })
  gateway.get('/api', async (request) => {
    request.log.info('calling user-service')
    const res = await gateway.flowtag.fetch('http://user-service/who')
    return { edge: request.flow.tag ?? null, rule: request.flow.decision?.rule ?? null, upstream: await res.json() }
  })
  t.teardown(() => gateway.close())
  await gateway.ready()
  t.equal(gateway.flowtag.rules?.version, 1, 'the first RuleSet is in force once ready')

  await waitFor('both instances in nacos', async () => (await admin.naming.instances('user-service')).length === 2)
  const listed = await admin.naming.instances('user-service')
  t.same(listed.map((i) => i.metadata.version).sort(), ['v1', 'v2'])
  t.ok(listed.some((i) => i.port === v2Port && i.ip === '127.0.0.1'), 'Express registered the address it listens on')
  for (const i of listed) {
    const startedAt = Number(i.metadata[STARTED_AT_METADATA])
    t.ok(startedAt >= before && startedAt <= Date.now(), `${i.metadata.version} publishes when it started listening (${STARTED_AT_METADATA}), for callers' warm-up`)
  }
  t.equal(ft.registration?.ready, true)

  const tester = (await gateway.inject({ url: '/api', headers: { 'x-tester': 'true' } })).json()
  t.same(tester, { edge: 'v2', rule: 'testers', upstream: { version: 'v2', lane: 'v2', header: 'v2' } }, 'tester: v2 at the edge and at user-service (Express)')
  const plain = (await gateway.inject('/api')).json()
  t.match(plain, { edge: 'v1', upstream: { version: 'v1', lane: 'v1', header: 'v1' } }, 'others: v1 (Fastify)')
  const forged = (await gateway.inject({ url: '/api', headers: { 'x-flow-tag': 'v2' } })).json()
  t.match(forged, { edge: 'v1', upstream: { version: 'v1' } }, 'the edge does not trust a tag sent by the client')
  t.ok(lines.some((l) => l.includes('"msg":"calling user-service"') && l.includes('"lane":"v2"')), 'request logs carry the lane')

  // a rule change arrives live: everyone to v2
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify({ ...testerRules, version: 2, default: 'v2' }), 'json')
  await waitFor('rule v2 at the edge', () => gateway.flowtag.rules?.version === 2)
  t.match((await gateway.inject('/api')).json(), { edge: 'v2', upstream: { version: 'v2', lane: 'v2' } })
})

t.test('Fastify: close deregisters, drains, then closes outbound, rules and the Nacos client, in that order', async (t) => {
  const { admin, nacos } = await world(t)
  const app = Fastify({ return503OnClosing: false })
  await app.register(fastifyFlowTagService, { service: 'closing', version: 'v1', nacos, rules: RULES, registration: { drainMs: 200 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await waitFor('registered', () => app.flowtag.ready)
  const order: string[] = []
  const record = <T extends object>(obj: T, method: keyof T & string, name: string, before?: () => Promise<void>) => {
    const original = (obj[method] as () => Promise<void>).bind(obj)
    ;(obj as Record<string, unknown>)[method] = async () => {
      await before?.()
      order.push(name)
      return original()
    }
  }
  const fc = app.flowtag
  let listedAtOutboundClose = -1
  record(fc.registration!, 'drain', 'drain')
  record(fc.dispatcher, 'close', 'outbound', async () => { listedAtOutboundClose = (await admin.naming.instances('closing')).length })
  record(fc.rules as { close(): Promise<void> }, 'close', 'rules')
  record(fc.registration!, 'close', 'registration')
  record(fc.nacos, 'close', 'nacos')
  const started = Date.now()
  await app.close()
  t.same(order, ['drain', 'outbound', 'rules', 'registration', 'nacos'])
  t.ok(Date.now() - started >= 190, 'waited drainMs')
  t.equal(listedAtOutboundClose, 0, 'already gone from Nacos when outbound closes')
  await t.rejects(fc.fetch('http://anyone/'), 'fetch fails once closed')
})

t.test('a given NacosClient and RuleStore stay open; registration: false registers nothing', async (t) => {
  const { admin, nacos } = await world(t)
  const client = new NacosClient(nacos)
  t.teardown(() => client.close())
  const svc = createFlowTagService({ service: 'quiet', mode: 'edge', nacos: client, rules: testerRules, registration: false })
  await svc.prepare()
  t.equal(svc.ready, true, 'ready without registration')
  t.equal(svc.rules?.version, 1, 'a RuleSet document works as fixed rules')
  await svc.start({ port: 1234 })
  const edge = createFlowTagService({ service: 'edge2', mode: 'edge', nacos: client, rules: svc.rules!, registration: false })
  await svc.close()
  await edge.close()
  t.same(await admin.naming.instances('quiet'), [])
  t.equal(await client.config.get(RULES.dataId, RULES.group) !== undefined, true, 'the given client still works')
  await t.rejects(svc.start({ port: 1 }), { code: 'FLOWTAG_SERVICE_CLOSED' })
})

t.test('/ready is 503 while draining and the service keeps serving (Fastify and Express)', async (t) => {
  const { admin, nacos } = await world(t)
  const app = Fastify({ return503OnClosing: false })
  await app.register(fastifyFlowTagService, { service: 'drainer', nacos, registration: { drainMs: 600 } })
  app.get('/work', async () => ({ ok: true }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())

  const ex = express()
  const ft = flowTagService({ service: 'drainer', nacos, registration: { drainMs: 600 }, signals: false })
  ex.use(ft)
  ex.get('/work', (_req, res) => { res.json({ ok: true }) })
  const server = await ft.listen(ex, { port: 0, host: '127.0.0.1' })
  const exUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  t.teardown(() => ft.close())

  await waitFor('both registered', () => app.flowtag.ready && ft.service.ready)
  t.equal((await fetch(`${url}/ready`)).status, 200)
  t.equal((await fetch(`${exUrl}/ready`)).status, 200)
  t.same(await (await fetch(`${exUrl}/health`)).json(), { status: 'ok' })

  const closing = app.close()
  const exClosing = ft.close()
  await waitFor('deregistered', async () => (await admin.naming.instances('drainer')).length === 0)
  for (const base of [url, exUrl]) {
    const ready = await fetch(`${base}/ready`)
    t.equal(ready.status, 503, `${base === url ? 'fastify' : 'express'}: not ready while draining`)
    t.match(await ready.json(), { status: 'not ready', draining: true })
    t.equal((await fetch(`${base}/work`)).status, 200, 'still serving while draining')
  }
  await Promise.all([closing, exClosing])
  t.equal(server.listening, false, 'the Express server is stopped after draining')
})

t.test('bad options fail before listening, naming the field', async (t) => {
  const nacos = { serverAddr: '127.0.0.1:1' }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ nacos }, /invalid option "service"/],
    [{ service: 's', nacos: { serverAddr: 'not an address!' } }, /invalid option "nacos\.serverAddr"/],
    [{ service: 's', nacos: { serverAddr: 'h:1', tranport: 'x' } }, /invalid option "nacos\.tranport"/],
    [{ service: 's', nacos, rules: { dataId: '' } }, /invalid option "rules\.dataId"/],
    [{ service: 's', nacos, mode: 'gateway' }, /invalid option "mode"/],
    [{ service: 's', nacos, mode: 'edge' }, /invalid option "rules": edge mode needs rules/],
    [{ service: 's', nacos, rules: { version: 1, default: 'v1', rules: [{ name: 'x', lane: 'not a lane!' }] } }, /invalid option "rules\.rules\.0\.lane": must be 1-64 characters.*, in the RuleSet document given as the "rules" option$/],
    // a typo'd key is named where it is, with where it came from; not "a RuleSet without a version"
    [{ service: 's', nacos, rules: { dataid: 'flowtag-rules.json', group: 'FLOWTAG' } }, /invalid option "rules\.dataid": unknown key in rules from the Nacos config center \(did you mean "dataId"\?\); valid keys: dataId, group/],
    [{ service: 's', nacos, rules: { dataId: 'r.json', grup: 'FLOWTAG' } }, /invalid option "rules\.grup": unknown key in rules from the Nacos config center/],
    [{ service: 's', nacos, rules: { version: 1, default: 'v1', servces: {} } }, /invalid option "rules\.servces": unknown key \(did you mean "services"\?\); valid keys: .*default.*, in the RuleSet document given as the "rules" option$/],
    [{ service: 's', nacos, rules: { version: 1, rules: [{ name: 'x', lane: 'v2', whenn: {} }] } }, /invalid option "rules\.rules\.0\.whenn": unknown key \(did you mean "when"\?\); valid keys: .*, in the RuleSet document given as the "rules" option; also rules\.default: /],
    [{ service: 's', nacos, version: 'v 2' }, /invalid option "version"/],
    [{ service: 's', nacos, registration: { drainMs: -1 } }, /invalid option "registration\.drainMs"/],
    [{ service: 's', nacos, outbound: { maxRetries: 99 } }, /invalid option "outbound\.maxRetries"/],
    [{ service: 's', nacos, outbound: { outlier: { baseEjectionMs: 1000, maxEjectionMs: 10 } } }, /invalid option "outbound\.outlier\.maxEjectionMs"/],
    [{ service: 's', nacos, outbound: { warmup: { windowMs: 0 } } }, /invalid option "outbound\.warmup\.windowMs"/],
    [{ service: 's', nacos, outbound: { retryBudget: { percent: -1 } } }, /invalid option "outbound\.retryBudget\.percent"/],
    [{ service: 's', nacos, trust: 'sometimes' }, /invalid option "trust/],
    [{ service: 's', nacos, healthz: '/h' }, /invalid option "healthz": unknown key; valid keys: service, version, .*healthPath, readyPath/]
  ]
  for (const [opts, message] of cases) {
    const app = Fastify()
    app.register(fastifyFlowTagService, opts as never) // the error surfaces from listen()
    let err: unknown
    try {
      await app.listen({ port: 0, host: '127.0.0.1' })
    } catch (e) {
      err = e
    }
    t.ok(err instanceof FlowTagError, `fastify ${message}: a FlowTagError`)
    t.match(err, { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: new RegExp(`^@flowtag/service: ${message.source}`) })
    t.equal(app.server.listening, false, 'not listening')
    await app.close().catch(() => {})
    t.throws(() => flowTagService({ signals: false, ...opts } as never), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message }, `express ${message}`)
  }
  // The deepest issue of the union (false | list): the bad element, not the union's own message.
  t.throws(() => flowTagService({ service: 's', nacos, signals: ['SIGKILL'] } as never), { code: 'FLOWTAG_SERVICE_BAD_OPTION', field: 'signals.0', message: /"signals\.0": Invalid option: expected one of "SIGTERM"\|"SIGINT"\|"SIGHUP"/ })
  t.throws(() => flowTagService({ service: 's', nacos, signals: 'SIGTERM' } as never), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /"signals": false, or a list/ })
})

t.test('a bad option carries its field as data, the deepest field of a union, and the key a typo meant', async (t) => {
  const nacos = { serverAddr: '127.0.0.1:1' }
  const cases: Array<[Record<string, unknown>, { field: string, path: unknown[], message: RegExp }]> = [
    // registration is `false | { ... }`: the field is the one inside it, not the union
    [{ registration: { drainMs: '2000' } }, { field: 'registration.drainMs', path: ['registration', 'drainMs'], message: /invalid option "registration\.drainMs": expected number, received string$/ }],
    [{ registration: { drainMS: 2000 } }, { field: 'registration.drainMS', path: ['registration', 'drainMS'], message: /unknown key \(did you mean "drainMs"\?\); valid keys: .*drainMs/ }],
    [{ servce: 'x' }, { field: 'servce', path: ['servce'], message: /invalid option "servce": unknown key \(did you mean "service"\?\)/ }],
    // refused by a composed package (the Nacos client, the tagger): named as the user wrote it
    [{ nacos: { serverAddr: 'h:1', tranport: 'grpc' } }, { field: 'nacos.tranport', path: ['nacos', 'tranport'], message: /invalid option "nacos\.tranport": unknown key \(did you mean "transport"\?\)/ }],
    [{ trust: { cidrs: ['10.0.0.0/8', 'nope'] } }, { field: 'trust.cidrs.1', path: ['trust', 'cidrs', 1], message: /invalid option "trust\.cidrs\.1": not a valid IPv4\/IPv6 CIDR: "nope"$/ }],
    [{ outbound: { maxRetries: 99 } }, { field: 'outbound.maxRetries', path: ['outbound', 'maxRetries'], message: /invalid option "outbound\.maxRetries": / }],
    // both signing shapes: one would be dropped unseen, so neither is taken
    [{ signing: { keys: [{ id: 'k1', secret: 'a-secret-of-16-chars' }] }, outbound: { signTag: () => 't' } }, { field: 'outbound.signTag', path: ['outbound', 'signTag'], message: /give signing or outbound\.signTag \(deprecated\), not both/ }]
  ]
  for (const [opts, want] of cases) {
    let err: FlowTagError | undefined
    try {
      flowTagService({ service: 's', nacos, signals: false, ...opts } as never)
    } catch (e) {
      err = e as FlowTagError
    }
    t.ok(err instanceof FlowTagError, want.field)
    t.equal(err?.code, 'FLOWTAG_SERVICE_BAD_OPTION', want.field)
    t.equal(err?.field, want.field)
    t.same(err?.path, want.path, want.field)
    t.match(err?.message, want.message)
  }
})

t.test('fallback receipts travel back to the edge; only a debug edge shows them (Fastify and Express)', async (t) => {
  const { admin, nacos } = await world(t)
  const user = express()
  const ft = flowTagService({ service: 'user-service', version: 'v1', nacos, rules: RULES, signals: false })
  user.use(ft)
  user.get('/who', (req, res) => { res.json({ version: 'v1', lane: req.flow.tag ?? null }) })
  const userServer = await ft.listen(user, { port: 0, host: '127.0.0.1' })
  t.teardown(() => ft.close())

  const order = Fastify({ return503OnClosing: false })
  await order.register(fastifyFlowTagService, { service: 'order-service', version: 'v2', nacos, rules: RULES })
  order.get('/order', async () => (await order.flowtag.fetch('http://user-service/who')).json())
  await order.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => order.close())

  const edge = async (debug: boolean) => {
    const app = Fastify()
    await app.register(fastifyFlowTagService, { service: 'gateway', mode: 'edge', nacos, rules: RULES, registration: false, debug })
    app.get('/api', async () => (await app.flowtag.fetch('http://order-service/order')).json())
    t.teardown(() => app.close())
    await app.ready()
    return app
  }
  const withDebug = await edge(true)
  const without = await edge(false)
  await waitFor('both services in nacos', async () => (await admin.naming.instances('user-service')).length === 1 && (await admin.naming.instances('order-service')).length === 1)

  const res = await withDebug.inject({ url: '/api', headers: { 'x-tester': 'true' } })
  t.same(res.json(), { version: 'v1', lane: 'v2' }, 'user-service v1 served the v2 request')
  t.equal(res.headers['x-flowtag-fallback'], 'user-service:v2>v1(no-instance)', 'the debug edge returns the receipt written by order-service')
  const plain = await without.inject({ url: '/api', headers: { 'x-tester': 'true' } })
  t.equal(plain.headers['x-flowtag-fallback'], undefined, 'not without debug')
  t.equal((await withDebug.inject('/api')).headers['x-flowtag-fallback'], undefined, 'no receipt for a request that stayed in its lane')

  // Express returns the receipt it received in baggage to its caller
  const direct = await fetch(`http://127.0.0.1:${(userServer.address() as { port: number }).port}/who`, {
    headers: { 'x-flow-tag': 'v2', baggage: 'flowtag.fallback=order-service%3Av3%3Ev2(no-instance)' }
  })
  t.equal(direct.headers.get('x-flowtag-fallback'), 'order-service:v3>v2(no-instance)')
})
