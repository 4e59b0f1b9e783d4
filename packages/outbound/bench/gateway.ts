// A gateway hop in one of these forms: `node bench/gateway.ts <mode> <upstreamPort>`.
//   flowtag    - FlowTagDispatcher: service name -> discovery -> lane -> weighted pick, tag injected
//   pool       - a hand-written forwarder: one undici.Pool to the fixed upstream address
//   reply-from - @fastify/reply-from with the upstream as base
//   reply-from-pool - @fastify/reply-from with an undici 8 Pool to the upstream as its `undici`
//                option: separates the cost of the undici major from the cost of lanes
//   reply-from-pool7 - the same with an undici 7 Pool: no lanes, the undici reply-from bundles,
//                but given as its `undici` option
//   reply-from-flowtag - @fastify/reply-from with `base: 'http://user-service'` and the
//                FlowTagDispatcher as its `undici` option: the gateway as proxy configuration
//   reply-from-flowtag-u7 - the same, with undici 7 Pools under the dispatcher (its `factory`
//                option); reply-from still calls undici 8's request() (the dispatcher's own)
//   reply-from-flowtag-via7 - the same pools, and reply-from's `undici` is dispatcherOf(undici 7
//                Dispatcher, dispatcher): undici 7's request() over our dispatcher, so only
//                lanes differ from stock reply-from
//   reply-from-flowtag-via7-pool8 - undici 7's request() through dispatcherOf(), undici 8 Pools
//   pool7, pool7-api8 - the hand-written forwarder over an undici 7 Pool, with undici 7's
//                request() or undici 8's (for bench/profile.ts: which part costs)
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { constants as perf, PerformanceObserver } from 'node:perf_hooks'
import Fastify, { type FastifyReply } from 'fastify'
import replyFrom from '@fastify/reply-from'
import { Dispatcher as Dispatcher8, Pool, type Dispatcher } from 'undici'
import { Dispatcher as Dispatcher7, Pool as Pool7 } from 'undici7'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { dispatcherOf, FlowTagDispatcher } from '../src/index.ts'

/** The hand-written part both undici forms share: status and the body's headers. */
function forward (reply: FastifyReply, res: Dispatcher.ResponseData) {
  reply.code(res.statusCode)
  const type = res.headers['content-type']
  const length = res.headers['content-length']
  if (type !== undefined) reply.header('content-type', type)
  if (length !== undefined) reply.header('content-length', length)
}

const [mode, upstreamPort] = process.argv.slice(2)
const upstream = `http://127.0.0.1:${upstreamPort}`
const app = Fastify({ logger: false })
// Every form runs inside the request's flow, as behind the tagging plugin; only flowtag uses it.
app.addHook('onRequest', (_req, _reply, done) => runWithFlow({ tag: 'v1', baggage: {} }, done))

if (mode === 'pool') {
  const pool = new Pool(upstream)
  app.get('/*', async (req, reply) => {
    const res = await pool.request({ path: req.url, method: 'GET', headers: { accept: 'application/json' } })
    forward(reply, res)
    return reply.send(res.body)
  })
} else if (mode === 'pool7') {
  const pool = new Pool7(upstream)
  app.get('/*', async (req, reply) => {
    const res = await pool.request({ path: req.url, method: 'GET', headers: { accept: 'application/json' } })
    forward(reply, res as never)
    return reply.send(res.body)
  })
} else if (mode === 'pool7-api8') {
  // undici 8's request() (its RequestHandler and body stream) over an undici 7 Pool
  const pool = new Pool7(upstream)
  const request8 = Dispatcher8.prototype.request as (this: unknown, o: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>
  app.get('/*', async (req, reply) => {
    const res = await request8.call(pool, { path: req.url, method: 'GET', headers: { accept: 'application/json' } })
    forward(reply, res)
    return reply.send(res.body)
  })
} else if (mode === 'flowtag') {
  const discovery = new StaticDiscovery({ 'user-service': [{ ip: '127.0.0.1', port: Number(upstreamPort), metadata: { version: 'v1' } }] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  app.get('/*', async (req, reply) => {
    const res = await dispatcher.request({ origin: 'http://user-service', path: req.url, method: 'GET', headers: { accept: 'application/json' } })
    forward(reply, res)
    return reply.send(res.body)
  })
} else if (mode === 'reply-from') {
  await app.register(replyFrom, { base: upstream })
  app.get('/*', (req, reply) => reply.from(req.url))
} else if (mode === 'reply-from-pool') {
  await app.register(replyFrom, { base: upstream, undici: new Pool(upstream) as never })
  app.get('/*', (req, reply) => reply.from(req.url))
} else if (mode === 'reply-from-pool7') {
  await app.register(replyFrom, { base: upstream, undici: new Pool7(upstream) as never })
  app.get('/*', (req, reply) => reply.from(req.url))
} else if (mode === 'reply-from-flowtag' || mode === 'reply-from-flowtag-u7') {
  const discovery = new StaticDiscovery({ 'user-service': [{ ip: '127.0.0.1', port: Number(upstreamPort), metadata: { version: 'v1' } }] })
  const factory = mode === 'reply-from-flowtag-u7' ? (origin: string, opts: Pool7.Options) => new Pool7(origin, opts) : undefined
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1', factory })
  // reply-from 12 types `undici` with undici 7's types; at run time it needs only request().
  await app.register(replyFrom, { base: 'http://user-service', undici: dispatcher as never })
  app.get('/*', (req, reply) => reply.from(req.url))
} else if (mode === 'reply-from-flowtag-via7' || mode === 'reply-from-flowtag-via7-pool8') {
  const discovery = new StaticDiscovery({ 'user-service': [{ ip: '127.0.0.1', port: Number(upstreamPort), metadata: { version: 'v1' } }] })
  const factory = mode === 'reply-from-flowtag-via7' ? (origin: string, opts: Pool7.Options) => new Pool7(origin, opts) : undefined
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1', factory })
  // reply-from calls request() on its `undici` option: undici 7's here, dispatching through ours.
  await app.register(replyFrom, { base: 'http://user-service', undici: dispatcherOf(Dispatcher7, dispatcher) as never })
  app.get('/*', (req, reply) => reply.from(req.url))
} else {
  throw new Error(`unknown mode ${mode}`)
}

// CPU time per request is the noise-resistant figure on a shared machine: hop.ts asks for it
// around each run. (The counter hook costs the same in every form.)
let served = 0
app.addHook('onResponse', (_req, _reply, done) => {
  served++
  done()
})
// GC pauses by kind (minor, major, incremental, weakcb), for bench/profile.ts.
const gc = new Map<number, { count: number; ms: number }>()
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind: number } }).detail?.kind ?? 0
    const g = gc.get(kind) ?? { count: 0, ms: 0 }
    g.count++
    g.ms += e.duration
    gc.set(kind, g)
  }
}).observe({ entryTypes: ['gc'] })

// bench/profile.ts profiles the load only (not start-up) through the inspector.
let session: Session | undefined
// `heap`: the sampling heap profiler, counting objects the GC already collected (what was
// allocated); with `live`, only what is still reachable when it stops (what survives).
let heap = false
process.on('message', (m: string | { profile: 'start'; heap?: boolean; live?: boolean } | { profile: 'stop'; file: string }) => {
  if (typeof m === 'object' && m.profile === 'start') {
    gc.clear()
    session = new Session()
    session.connect()
    heap = m.heap === true
    const started = heap
      ? session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: m.live !== true, includeObjectsCollectedByMinorGC: m.live !== true })
      : session.post('Profiler.enable').then(() => session!.post('Profiler.start'))
    void started.then(() => process.send?.({ profiling: true }))
    return
  }
  if (typeof m === 'object' && m.profile === 'stop') {
    const stopped = heap ? session!.post('HeapProfiler.stopSampling') : session!.post('Profiler.stop')
    void stopped.then(({ profile }) => {
      writeFileSync(m.file, JSON.stringify(profile))
      const kinds: Record<number, string> = { [perf.NODE_PERFORMANCE_GC_MINOR]: 'minor', [perf.NODE_PERFORMANCE_GC_MAJOR]: 'major', [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' }
      process.send?.({ profiled: m.file, gc: Object.fromEntries([...gc].map(([k, v]) => [kinds[k] ?? String(k), { count: v.count, ms: Number(v.ms.toFixed(1)) }])) })
    })
    return
  }
  if (m !== 'stats') return
  const cpu = process.cpuUsage()
  process.send?.({ stats: { cpuMicros: cpu.user + cpu.system, served } })
})

const address = await app.listen({ port: 0, host: '127.0.0.1' })
process.send?.({ port: Number(new URL(address).port) })
process.on('disconnect', () => app.close().then(() => process.exit(0)))
