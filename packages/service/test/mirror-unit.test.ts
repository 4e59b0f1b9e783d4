// The mirror sender alone (framework-free), over a real dispatcher and loopback servers: caps,
// failures as answers, a comparer that throws, and the body helpers the presets use.
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { StaticDiscovery } from '@flowtag/nacos'
import { FlowTagDispatcher } from '@flowtag/outbound'
import { waitFor } from '@flowtag/test-kit'
import type { Meter } from '@opentelemetry/api'
import type { Dispatcher } from 'undici'
import { createFlowTagService, shadowOptionsSchema, ShadowMirror, type ShadowPair } from '../src/index.ts'
import { BodyCapture, bodyBytes } from '../src/mirror.ts'

interface Seen { method: string, url: string, headers: IncomingMessage['headers'], body: string }

async function server (t: Test, answer: (req: IncomingMessage, body: string) => { status: number, body: string }): Promise<{ port: number, seen: Seen[] }> {
  const seen: Seen[] = []
  const s = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body })
      const a = answer(req, body)
      res.statusCode = a.status
      res.end(a.body)
    })
  })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())))
  return { port: (s.address() as AddressInfo).port, seen }
}

const primary = { status: 200, headers: {}, body: Buffer.from('{"a":1}'), truncated: false }
const quiet = () => {}

function mirrorOf (t: Test, port: number, options: object, warn: (o: object, m: string) => void = quiet) {
  const dispatcher = new FlowTagDispatcher({ discovery: new StaticDiscovery({ orders: [{ ip: '127.0.0.1', port, metadata: { version: 'v2' } }] }), stableLane: 'v2', logger: { warn: quiet, info: quiet } })
  t.teardown(() => dispatcher.close())
  return new ShadowMirror('orders', dispatcher, shadowOptionsSchema.parse(options), warn)
}

t.test('the copy: method, path and query, headers (not hop-by-hop, not the flow), body; the answer cut at the cap', async (t) => {
  const target = await server(t, (req) => ({ status: req.url === '/boom' ? 503 : 200, body: 'x'.repeat(100) }))
  const pairs: ShadowPair[] = []
  const m = mirrorOf(t, target.port, { maxBodyBytes: 10, comparer: { compare: (p: ShadowPair) => pairs.push(p) } })
  m.send({ method: 'POST', url: '/o?q=1', headers: { 'content-type': 'text/plain', connection: 'keep-alive', 'x-flow-tag': 'v9', baggage: 'a=b', host: 'edge', cookie: 'c=1' }, body: Buffer.from('hello') }, primary, '/o', 'v2', 'v1')
  const pair = await waitFor('pair', () => pairs[0])
  t.match(target.seen[0], { method: 'POST', url: '/o?q=1', body: 'hello', headers: { 'content-type': 'text/plain', cookie: 'c=1', 'x-flow-tag': 'v2', 'x-flow-shadow': '1', host: 'orders' } })
  t.notOk(String(target.seen[0]!.headers.baggage).includes('a=b'), 'the caller\'s baggage is not copied: the copy has its own flow')
  t.same([pair.mirror.status, pair.mirror.body.toString(), pair.mirror.truncated], [200, 'x'.repeat(10), true])
  m.send({ method: 'GET', url: '/boom', headers: {}, body: Buffer.from('ignored for GET') }, primary, '/boom', 'v2', undefined)
  const five = await waitFor('5xx pair', () => pairs[1])
  t.equal(five.mirror.status, 503)
  t.equal(five.primaryLane, '')
  t.equal(target.seen[1]!.body, '', 'a GET copy has no body')
  t.match(m.stats, { sent: 2, error5xx: 1, compared: 2 })
})

t.test('failures are answers with status 0; a throwing comparer is counted; closed sends nothing', async (t) => {
  const warnings: string[] = []
  // nothing listens on the port of a closed server: connection refused
  const gone = await server(t, () => ({ status: 200, body: '' }))
  const m1 = mirrorOf(t, 1, {
    comparer: {
      compare: () => { throw new Error('bad comparer') },
      needsSecondary: () => { throw new Error('bad needsSecondary') }
    }
  }, (_o, msg) => warnings.push(msg))
  m1.send({ method: 'GET', url: '/', headers: {}, body: undefined }, primary, '/', 'v2', 'v1')
  await waitFor('settled', () => m1.stats.comparerErrors === 2 && m1.inFlight === 0)
  t.match(m1.stats, { failed: 1, compared: 0, comparerErrors: 2 })
  t.match(warnings, [/needsSecondary threw/, /compare threw/])
  m1.close()
  m1.send({ method: 'GET', url: '/', headers: {}, body: undefined }, primary, '/', 'v2', 'v1')
  t.equal(m1.stats.sent, 1, 'closed: nothing more is sent')
  // no comparer: sent and counted, nothing compared
  const m2 = mirrorOf(t, gone.port, {})
  m2.send({ method: 'GET', url: '/', headers: {}, body: undefined }, primary, '/', 'v2', 'v1')
  await waitFor('sent', () => gone.seen.length === 1 && m2.inFlight === 0)
  t.match(m2.stats, { sent: 1, compared: 0 })
  m2.skip('v2')
  t.equal(m2.stats.skipped, 1)
})

t.test('a copy that fails inside the sender itself (a meter that throws) is warned about, frees its slot and never rejects unhandled', async (t) => {
  const target = await server(t, () => ({ status: 200, body: 'ok' }))
  const dispatcher = new FlowTagDispatcher({ discovery: new StaticDiscovery({ orders: [{ ip: '127.0.0.1', port: target.port, metadata: { version: 'v2' } }] }), stableLane: 'v2', logger: { warn: quiet, info: quiet } })
  t.teardown(() => dispatcher.close())
  const broken = { createCounter: () => ({ add: () => { throw new Error('meter broke') } }) } as unknown as Meter
  const warnings: string[] = []
  const m = new ShadowMirror('orders', dispatcher, shadowOptionsSchema.parse({ comparer: { compare: () => {} } }), (_o, msg) => warnings.push(msg), broken)
  m.send({ method: 'GET', url: '/', headers: {}, body: undefined }, primary, '/', 'v2', 'v1')
  await waitFor('warned', () => warnings.length === 1)
  t.match(warnings, [/mirror failed/])
  t.equal(m.inFlight, 0, 'the slot is free again')
})

t.test('a settled copy leaves no timeout behind (its signal is never aborted afterwards)', async (t) => {
  const target = await server(t, () => ({ status: 200, body: 'ok' }))
  const real = new FlowTagDispatcher({ discovery: new StaticDiscovery({ orders: [{ ip: '127.0.0.1', port: target.port, metadata: { version: 'v2' } }] }), stableLane: 'v2', logger: { warn: quiet, info: quiet } })
  t.teardown(() => real.close())
  const signals: AbortSignal[] = []
  const spy = { request: (opts: Dispatcher.RequestOptions) => { signals.push(opts.signal as AbortSignal); return real.request(opts) } } as unknown as Dispatcher
  const pairs: ShadowPair[] = []
  const m = new ShadowMirror('orders', spy, shadowOptionsSchema.parse({ timeoutMs: 100, comparer: { compare: (p: ShadowPair) => pairs.push(p) } }), quiet)
  m.send({ method: 'GET', url: '/', headers: {}, body: undefined }, primary, '/', 'v2', 'v1')
  const pair = await waitFor('pair', () => pairs[0])
  t.equal(pair.mirror.status, 200)
  // well past timeoutMs: a timer left running would abort the signal (and build an error) now
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(signals.length, 1)
  t.equal(signals[0]!.aborted, false, 'the copy\'s timeout was cleared when it settled')
  t.match(m.stats, { sent: 1, timeout: 0, compared: 1 })
})

t.test('a copy whose body stalls after its headers times out (status 0, counted), and its body is not read on', async (t) => {
  const s = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('part') // then nothing: the rest never comes
  })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()) }))
  const pairs: ShadowPair[] = []
  const m = mirrorOf(t, (s.address() as AddressInfo).port, { timeoutMs: 300, comparer: { compare: (p: ShadowPair) => pairs.push(p) } })
  m.send({ method: 'GET', url: '/', headers: {}, body: undefined }, primary, '/', 'v2', 'v1')
  const pair = await waitFor('pair', () => pairs[0])
  t.match(pair.mirror, { status: 0, headers: { 'x-flowtag-error': /Abort|Timeout/ } })
  t.match(m.stats, { sent: 1, timeout: 1, failed: 0, compared: 1 })
  t.equal(m.inFlight, 0)
})

t.test('answers cut at the cap, in one chunk or many: the captured bytes, then the stream is let go', async (t) => {
  const target = await server(t, (req) => ({ status: 200, body: req.url === '/small' ? 'abc' : 'y'.repeat(200_000) }))
  const pairs: ShadowPair[] = []
  const m = mirrorOf(t, target.port, { maxBodyBytes: 70_000, comparer: { compare: (p: ShadowPair) => pairs.push(p) } })
  m.send({ method: 'GET', url: '/big', headers: {}, body: undefined }, primary, '/big', 'v2', 'v1')
  m.send({ method: 'GET', url: '/small', headers: {}, body: undefined }, primary, '/small', 'v2', 'v1')
  await waitFor('pairs', () => pairs.length === 2 && m.inFlight === 0)
  const big = pairs.find((p) => p.route === '/big')!
  const small = pairs.find((p) => p.route === '/small')!
  t.same([big.mirror.body.length, big.mirror.truncated, big.mirror.body.every((b) => b === 121)], [70_000, true, true])
  t.same([small.mirror.body.toString(), small.mirror.truncated], ['abc', false])
  // the cut stream's abort error found its listener: the process is still here, and still sends
  m.send({ method: 'GET', url: '/small', headers: {}, body: undefined }, primary, '/small', 'v2', 'v1')
  await waitFor('third pair', () => pairs.length === 3)
  t.match(m.stats, { sent: 3, failed: 0, timeout: 0, compared: 3 })
})

t.test('a copy served from another lane (no instance in the mirror lane) is not compared', async (t) => {
  const stable = await server(t, () => ({ status: 200, body: 'v1' }))
  const dispatcher = new FlowTagDispatcher({ discovery: new StaticDiscovery({ orders: [{ ip: '127.0.0.1', port: stable.port, metadata: { version: 'v1' } }] }), stableLane: 'v1', logger: { warn: quiet, info: quiet } })
  t.teardown(() => dispatcher.close())
  const pairs: ShadowPair[] = []
  const m = new ShadowMirror('orders', dispatcher, shadowOptionsSchema.parse({ comparer: { compare: (p: ShadowPair) => pairs.push(p), needsSecondary: () => true } }), quiet)
  m.send({ method: 'GET', url: '/', headers: {}, body: undefined }, primary, '/', 'v2', 'v1')
  await waitFor('settled', () => m.inFlight === 0 && m.stats.sent === 2)
  t.equal(stable.seen.length, 2, 'both copies reached v1: the mirror\'s by fallback, the secondary in its own lane')
  t.match(m.stats, { fallback: 1, compared: 0 })
  t.equal(pairs.length, 0, 'stable answering for v2 would hide a divergence: no pair')
})

t.test('BodyCapture and bodyBytes', async (t) => {
  const c = new BodyCapture(5)
  c.add('ab')
  c.add(new Uint8Array([99]))
  c.add(undefined)
  c.add(42)
  c.add('6869', 'hex')
  t.same([c.body.toString(), c.truncated], ['abchi', false])
  c.add('!')
  t.same([c.body.toString(), c.truncated], ['abchi', true])
  c.add('more')
  t.equal(c.body.length, 5)
  // an app's Buffer is copied (it may reuse it once the answer is sent); a string's bytes are not copied twice
  const app = Buffer.from('abc')
  const own = new BodyCapture(10)
  own.add(app)
  const captured = own.body
  app.write('z')
  t.equal(captured.toString(), 'abc', 'the app writing into its Buffer afterwards changes nothing captured')
  const fromString = new BodyCapture(10)
  fromString.add('abc')
  t.equal(fromString.body, fromString.body, 'one chunk made from a string: handed over as it is')
  t.equal(bodyBytes(undefined), undefined)
  t.equal(bodyBytes(null), undefined)
  t.same(bodyBytes(Buffer.from('x')), Buffer.from('x'))
  t.same(bodyBytes('s'), Buffer.from('s'))
  t.same(bodyBytes({ a: 1 }), Buffer.from('{"a":1}'))
  t.equal(bodyBytes(Readable.from(['x'])), false, 'a stream cannot be sent again')
  t.equal(bodyBytes(1n), false, 'what JSON cannot write')
})

t.test('Fastify: a POST mirror sends the parsed body again; a streamed answer counts as cut; an oversized body is skipped', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { fastifyFlowTagService } = await import('../src/fastify.ts')
  const pairs: ShadowPair[] = []
  const app = Fastify()
  await app.register(fastifyFlowTagService, {
    service: 'orders',
    nacos: { serverAddr: '127.0.0.1:1' },
    cacheDir: false,
    registration: false,
    outbound: { connectTimeout: 200, logger: { warn: quiet, info: quiet } },
    rules: { version: 1, rules: [{ name: 'all', lane: 'v1', mirror: { lane: 'v2', percent: 100, methods: ['POST', 'GET'] } }], default: 'v1' },
    shadow: { comparer: { compare: (p: ShadowPair) => pairs.push(p) }, maxBodyBytes: 64, timeoutMs: 3000 }
  })
  app.post('/orders', async (request) => ({ got: request.body }))
  app.get('/stream', async (_request, reply) => reply.send(Readable.from(['a', 'b'])))
  t.teardown(() => app.close())
  const r = await app.inject({ method: 'POST', url: '/orders', payload: { n: 1 } })
  t.same(r.json(), { got: { n: 1 } })
  await app.inject({ method: 'GET', url: '/stream' })
  await app.inject({ method: 'POST', url: '/orders', payload: { n: 'x'.repeat(100) } })
  await app.inject({ method: 'GET', url: '/nowhere' })
  await waitFor('the pairs', () => pairs.length === 3 && app.flowtag.mirror.inFlight === 0, 20_000)
  const byRoute = Object.fromEntries(pairs.map((p) => [p.route, p]))
  t.match(byRoute['/orders'], { method: 'POST', lane: 'v2', primary: { status: 200 }, mirror: { status: 0 } }, 'no v2 instance reachable: status 0')
  t.same(JSON.parse(byRoute['/orders']!.primary.body.toString()), { got: { n: 1 } })
  t.match(byRoute['/stream'], { primary: { status: 200, truncated: true } })
  t.match(byRoute['(no route)'], { primary: { status: 404 } }, 'an unmatched request is named by no raw URL')
  t.equal(app.flowtag.mirror.stats.skipped, 1, 'the body over the cap was not mirrored')
})

t.test('a comparer factory gets the meter of the served /metrics, so a canary reads its figures there', async (t) => {
  const nacos = { serverAddr: '127.0.0.1:1', timeoutMs: 300, recoveryProbeMs: 100 }
  let calls = 0
  const svc = createFlowTagService({
    service: 'edge',
    nacos,
    registration: false,
    metrics: { serve: true },
    cacheDir: false,
    shadow: {
      comparer: ({ meter }) => {
        calls++
        const pairs = meter.createCounter('flowtag.shadow.compared')
        pairs.add(3, { service: 'orders', route: '/items/:id', lane: 'v2' })
        return { compare () {} }
      }
    }
  })
  t.teardown(() => svc.close())
  t.equal(calls, 1, 'made once, by the preset')
  t.match(await svc.prometheus!.text(), /flowtag_shadow_compared_total\{[^}]*service="orders"[^}]*\} 3/, 'on the preset\'s own /metrics')
  t.throws(() => createFlowTagService({ service: 'edge', nacos, registration: false, cacheDir: false, shadow: { comparer: () => ({}) as never } }),
    { code: 'FLOWTAG_SERVICE_BAD_OPTION', field: 'shadow.comparer', message: /factory returned no comparer/ })
})
