// A gateway hop in one of three forms: `node bench/gateway.ts <mode> <upstreamPort>`.
//   flowtag    - FlowTagDispatcher: service name -> discovery -> lane -> weighted pick, tag injected
//   pool       - a hand-written forwarder: one undici.Pool to the fixed upstream address
//   reply-from - @fastify/reply-from with the upstream as base
//   reply-from-pool - @fastify/reply-from with an undici 8 Pool to the upstream as its `undici`
//                option: separates the cost of the undici major from the cost of lanes
//   reply-from-flowtag - @fastify/reply-from with `base: 'http://user-service'` and the
//                FlowTagDispatcher as its `undici` option: the gateway as proxy configuration
import Fastify, { type FastifyReply } from 'fastify'
import replyFrom from '@fastify/reply-from'
import { Pool, type Dispatcher } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagDispatcher } from '../src/index.ts'

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
} else if (mode === 'reply-from-flowtag') {
  const discovery = new StaticDiscovery({ 'user-service': [{ ip: '127.0.0.1', port: Number(upstreamPort), metadata: { version: 'v1' } }] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  // reply-from 12 types `undici` with undici 7's types; at run time it needs only request().
  await app.register(replyFrom, { base: 'http://user-service', undici: dispatcher as never })
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
process.on('message', (m: string) => {
  if (m !== 'stats') return
  const cpu = process.cpuUsage()
  process.send?.({ stats: { cpuMicros: cpu.user + cpu.system, served } })
})

const address = await app.listen({ port: 0, host: '127.0.0.1' })
process.send?.({ port: Number(new URL(address).port) })
process.on('disconnect', () => app.close().then(() => process.exit(0)))
