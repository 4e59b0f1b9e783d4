// The dispatcher over pools of another undici major: the `factory` option with undici 7 Pools
// (the undici @fastify/reply-from 12 bundles), on real loopback servers, and dispatcherOf(), which
// gives reply-from undici 7's request() over the dispatcher.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'
import { request } from 'undici'
import { Dispatcher as Dispatcher7, Pool as Pool7, errors as errors7, type Dispatcher as D7 } from 'undici7'
import { StaticDiscovery } from '@flowtag/nacos'
import { fastifyFlowTag } from '@flowtag/context/fastify'
import { runWithFlow } from '@flowtag/context'
import { dispatcherOf, FlowTagDispatcher, OutboundError, type InstancePoolOptions } from '../src/index.ts'
import { startInstance } from './fixtures/instances.ts'
import { startStale } from './fixtures/stale.ts'

const at = (i: { port: number }, version = 'v1') => ({ ip: '127.0.0.1', port: i.port, metadata: { version } })

/** A factory of undici 7 Pools that remembers what it made and with which options. */
function pools7 (extra: Pool7.Options = {}) {
  const made: Array<{ origin: string; options: InstancePoolOptions; pool: Pool7 }> = []
  const factory = (origin: string, options: InstancePoolOptions) => {
    const pool = new Pool7(origin, { ...options, ...extra })
    made.push({ origin, options, pool })
    return pool
  }
  return { made, factory }
}

async function get (d: FlowTagDispatcher, tag?: string, path = '/x') {
  const send = async () => {
    const res = await request(`http://svc${path}`, { dispatcher: d })
    return { status: res.statusCode, body: (await res.body.json()) as { id: string; tag: string | null; host: string } }
  }
  return tag === undefined ? send() : runWithFlow({ tag, baggage: {} }, send)
}

t.test('undici 7 Pools from the factory: lanes, flow headers, options handed over, one pool per instance', async (t) => {
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const { made, factory } = pools7()
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [at(v1, 'v1'), at(v2, 'v2')] }), stableLane: 'v1', factory, connectTimeout: 1500, keepAliveTimeout: 3000, connections: 4 })
  t.teardown(() => d.close())
  for (let i = 0; i < 6; i++) {
    const tagged = await get(d, 'v2')
    t.match(tagged, { status: 200, body: { id: 'two', tag: 'v2', host: 'svc' } })
    t.match(await get(d), { status: 200, body: { id: 'one' } })
  }
  t.equal(made.length, 2, 'one pool per instance, made on first use')
  t.same(made.map((m) => m.origin).sort(), [`http://127.0.0.1:${v1.port}`, `http://127.0.0.1:${v2.port}`].sort())
  t.same(made[0]!.options, { connections: 4, connectTimeout: 1500, headersTimeout: 30_000, bodyTimeout: 30_000, keepAliveTimeout: 3000 })
  t.ok(made.every((m) => m.pool instanceof Pool7), 'undici 7 Pools')
  t.equal(d.snapshot('svc')?.pools, 2)
  t.ok(v1.open <= 1 && v2.open <= 1, 'sequential requests reuse one kept-alive connection per instance')
})

t.test('close() closes the undici 7 pools gracefully; destroy() fails what is in flight', async (t) => {
  const inst = await startInstance(t, 'one', 'v1')
  const { made, factory } = pools7()
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [at(inst)] }), stableLane: 'v1', factory })
  const slow = get(d, undefined, '/x?delay=300')
  await new Promise((r) => setTimeout(r, 100))
  await d.close()
  t.match(await slow, { status: 200 }, 'the request in flight finished first')
  t.ok(made[0]!.pool.closed, 'the pool is closed')

  const second = pools7()
  const d2 = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [at(inst)] }), stableLane: 'v1', factory: second.factory })
  const doomed = get(d2, undefined, '/x?delay=2000').catch((err: Error) => err)
  await new Promise((r) => setTimeout(r, 100))
  await d2.destroy(new Error('shutting down'))
  t.match(await doomed, { message: 'shutting down' }, 'destroy(err) failed the request in flight')
  t.ok(second.made[0]!.pool.destroyed, 'the pool is destroyed')
})

t.test('a refused connection from an undici 7 pool is retried on another instance and counts against the first', async (t) => {
  const [a, b] = await Promise.all([startInstance(t, 'a', 'v1'), startInstance(t, 'b', 'v1')])
  const port = a.port
  await a.kill()
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ...at({ port }), weight: 100 }, { ...at(b), weight: 1 }] }), stableLane: 'v1', factory: pools7().factory, outlier: { consecutiveFailures: 2 } })
  t.teardown(() => d.close())
  for (let i = 0; i < 4; i++) t.match(await get(d), { status: 200, body: { id: 'b' } })
  t.same(d.snapshot('svc')?.ejected, [`127.0.0.1:${port}`], 'ECONNREFUSED from undici 7 ejected the dead instance')
})

t.test('an undici 7 connect timeout is a connection failure: retried elsewhere', async (t) => {
  const [a, b] = await Promise.all([startInstance(t, 'a', 'v1'), startInstance(t, 'b', 'v1')])
  const hung: string[] = []
  const factory = (origin: string, options: InstancePoolOptions) => {
    if (!origin.endsWith(`:${a.port}`)) return new Pool7(origin, options)
    // A connector that never connects, failing after the dispatcher's connectTimeout as undici's own would.
    return new Pool7(origin, {
      ...options,
      connect: (_opts, callback) => {
        hung.push(origin)
        setTimeout(() => callback(new errors7.ConnectTimeoutError(), null), options.connectTimeout)
      }
    })
  }
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ...at(a), weight: 100 }, { ...at(b), weight: 1 }] }), stableLane: 'v1', factory, connectTimeout: 50 })
  t.teardown(() => d.close())
  t.match(await get(d), { status: 200, body: { id: 'b' } })
  t.ok(hung.length >= 1, 'the first attempt met the connect timeout')
})

t.test('stale kept-alive connection of an undici 7 pool: sent once more over a fresh one from the factory', async (t) => {
  const s = await startStale(t)
  const { made, factory } = pools7()
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [at(s)] }), stableLane: 'v1', factory })
  t.teardown(() => d.close())
  for (let i = 0; i < 3; i++) t.match(await get(d), { status: 200 }, `GET ${i + 1}`)
  t.ok(s.dropped >= 1, `the server dropped a reused connection (${s.dropped} times)`)
  t.equal(s.answered, 3)
  t.ok(made.some((m) => m.options.connections === 1), 'the fresh connection came from the factory (connections: 1)')
  t.same(d.snapshot('svc')?.ejected, [])
})

t.test('keepAliveTimeout reaches the undici 7 pool: an idle connection is closed by the client', async (t) => {
  // No server-side idle timeout, so no `Keep-Alive: timeout` hint: the client's own timeout applies.
  let open = 0
  let closed = 0
  const server = createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"ka"}'))
  server.keepAliveTimeout = 0
  server.on('connection', (socket) => {
    open++
    socket.on('close', () => closed++)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [at(server.address() as AddressInfo)] }), stableLane: 'v1', factory: pools7().factory, keepAliveTimeout: 200 })
  t.teardown(() => d.close())
  await get(d)
  await get(d)
  t.ok(open >= 1 && closed === 0, 'kept alive after the requests')
  const start = Date.now()
  while (closed < open && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 25))
  t.equal(closed, open, 'closed by the client after its idle time')
  t.ok(Date.now() - start < 2000, `within the keep-alive timeout (${Date.now() - start} ms)`)
})

t.test('dispatcherOf(undici 7 Dispatcher): reply-from gets undici 7\'s request() over the dispatcher, lanes kept', async (t) => {
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [at(v1, 'v1'), at(v2, 'v2')] }), stableLane: 'v1', factory: pools7().factory })
  const via = dispatcherOf(Dispatcher7, d)
  t.ok(via instanceof Dispatcher7, 'an undici 7 Dispatcher')
  t.equal(via.request, Dispatcher7.prototype.request, 'whose request() is undici 7\'s')
  const app = Fastify()
  await app.register(fastifyFlowTag, { mode: 'edge', rules: { version: 1, rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' }], default: 'v1' } })
  await app.register(replyFrom, { base: 'http://svc', undici: via as never })
  app.get('/*', (req, reply) => reply.from(req.url))
  app.post('/*', (req, reply) => reply.from(req.url))
  for (let i = 0; i < 6; i++) {
    const tester = i % 2 === 0
    const res = await app.inject({ url: `/users/${i}`, headers: tester ? { 'x-tester': 'yes' } : {} })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { id: tester ? 'two' : 'one', tag: tester ? 'v2' : 'v1', host: 'svc', path: `/users/${i}` })
  }
  // A POST with a body goes through undici 7's callback handlers, converted.
  const post = await app.inject({ method: 'POST', url: '/users', headers: { 'content-type': 'application/json' }, payload: { name: 'ada' } })
  t.match(post.json(), { id: 'one', method: 'POST', body: '{"name":"ada"}' })
  await app.close()
  // Routing errors reach undici 7's callback as the OutboundError.
  const err = await (via as unknown as D7).request({ origin: 'http://nowhere', path: '/', method: 'GET' }).catch((e: unknown) => e)
  t.ok(err instanceof OutboundError, 'a routing failure is the OutboundError')
  await via.close()
  t.match(await get(d).catch((e: unknown) => e), { code: 'FLOWTAG_OUTBOUND_CLOSED' }, 'closing the bridge closed the dispatcher')
})

t.test('dispatcherOf() callbacks and destroy(), and bad arguments', async (t) => {
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({}) })
  const via = dispatcherOf(Dispatcher7, d) as unknown as { close (cb: () => void): void; destroy (cb: () => void): void }
  await new Promise<void>((resolve) => via.close(resolve))
  await new Promise<void>((resolve) => via.destroy(resolve))
  const d2 = new FlowTagDispatcher({ discovery: new StaticDiscovery({}) })
  const via2 = dispatcherOf(Dispatcher7, d2) as unknown as { destroy (err: Error, cb: () => void): void }
  await new Promise<void>((resolve) => via2.destroy(new Error('x'), resolve))
  t.throws(() => dispatcherOf(class {} as never, d), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /invalid option "Dispatcher"/ })
  t.throws(() => dispatcherOf(Dispatcher7, {} as never), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /invalid option "dispatcher"/ })
  t.throws(() => new FlowTagDispatcher({ discovery: new StaticDiscovery({}), factory: 'pool' as never }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /invalid option "factory"/ })
})
