// A Fastify edge service built from the packages' public exports only.
import Fastify from 'fastify'
import fastifyNacos from '@flowtag/nacos/fastify'
import { fastifyFlowTag } from '@flowtag/context/fastify'
import { createRuleStore, nacosSource, serviceLanes } from '@flowtag/rules'
import { FlowtagDispatcher } from '@flowtag/outbound'
import { request } from 'undici'

const nacos = process.env.NACOS_SERVER_ADDR
const app = Fastify()
await app.register(fastifyNacos, { nacos: { serverAddr: nacos }, service: 'edge', version: 'v1' })
const rules = createRuleStore({ source: nacosSource({ config: app.nacos.client.config, dataId: 'flowtag-rules.json' }) })
await app.register(fastifyFlowTag, { mode: 'edge', rules })
const outbound = new FlowtagDispatcher({
  discovery: app.nacos.discovery,
  stableLane: 'v1',
  lanes: (service) => (rules.current === undefined ? undefined : serviceLanes(rules.current, service))
})
app.addHook('onClose', async () => { await outbound.close(); await rules.close() })

app.get('/call', async (req) => {
  const res = await request('http://catalog/where', { dispatcher: outbound })
  return { edgeLane: req.flow.tag ?? null, upstream: await res.body.json() }
})

await rules.ready
await app.listen({ port: 0, host: '127.0.0.1' })
process.send?.({ port: app.server.address().port })
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))
