// A soak server: `node --expose-gc bench/soak-server.ts <flowtag|bare> <upstreamPort>`.
//   flowtag - Fastify + the @flowtag/context edge plugin (20 rules) + one FlowTagDispatcher hop
//   bare    - Fastify + one undici.Pool hop to the same upstream (the baseline)
// Answers `mem` on IPC with its RSS and heap after a full GC (a leak detector, not a peak meter).
import Fastify from 'fastify'
import { Pool } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { fastifyFlowTag } from '@flowtag/context/fastify'
import type { RuleSetInput } from '@flowtag/rules'
import { FlowTagDispatcher } from '../src/index.ts'

const [mode, upstreamPort] = process.argv.slice(2)
const app = Fastify({ logger: false })

const rules: RuleSetInput = {
  version: 1,
  user: { header: 'x-user-id' },
  services: { 'user-service': { stable: 'v1', candidates: ['v2'] } },
  rules: [
    ...Array.from({ length: 19 }, (_, i) => ({ name: `r${i}`, when: { headers: { [`x-feature-${i % 5}`]: { equals: `on-${i}` } } }, lane: 'v2' })),
    { name: 'canary', split: { key: { header: 'x-user-id' }, weights: { v2: 10 }, rest: 'v1' } }
  ],
  default: 'v1'
}

if (mode === 'flowtag') {
  // Both lanes on the one upstream port: the lane changes headers and the pick, not the target.
  const discovery = new StaticDiscovery({
    'user-service': [
      { ip: '127.0.0.1', port: Number(upstreamPort), metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: Number(upstreamPort), clusterName: 'B', metadata: { version: 'v2' } }
    ]
  })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  await app.register(fastifyFlowTag, { mode: 'edge', rules })
  app.get('/users/:id', async (req, reply) => {
    const res = await dispatcher.request({ origin: 'http://user-service', path: `/users/${(req.params as { id: string }).id}`, method: 'GET' })
    reply.code(res.statusCode).header('content-type', 'application/json')
    return reply.send(await res.body.text())
  })
} else if (mode === 'bare') {
  const pool = new Pool(`http://127.0.0.1:${upstreamPort}`)
  app.get('/users/:id', async (req, reply) => {
    const res = await pool.request({ path: `/users/${(req.params as { id: string }).id}`, method: 'GET' })
    reply.code(res.statusCode).header('content-type', 'application/json')
    return reply.send(await res.body.text())
  })
} else {
  throw new Error(`unknown mode ${mode}`)
}

let served = 0
app.addHook('onResponse', (_req, _reply, done) => {
  served++
  done()
})
process.on('message', (m: string) => {
  if (m !== 'mem') return
  ;(globalThis as { gc?: () => void }).gc?.()
  const u = process.memoryUsage()
  process.send?.({ mem: { rss: u.rss, heapUsed: u.heapUsed, served } })
})
const address = await app.listen({ port: 0, host: '127.0.0.1' })
process.send?.({ port: Number(new URL(address).port) })
process.on('disconnect', () => app.close().then(() => process.exit(0)))
