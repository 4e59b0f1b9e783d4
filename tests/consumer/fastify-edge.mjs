// A Fastify edge service: one register call from @flowtag/service makes it lane-aware.
import Fastify from 'fastify'
import fastifyFlowTagService from '@flowtag/service/fastify'

const app = Fastify({ return503OnClosing: false })
await app.register(fastifyFlowTagService, {
  service: 'edge',
  version: 'v1',
  mode: 'edge',
  nacos: { serverAddr: process.env.NACOS_SERVER_ADDR },
  rules: { dataId: 'flowtag-rules.json' },
  outbound: { stableLane: 'v1' }
})
app.get('/call', async (req) => {
  const res = await app.flowtag.fetch('http://catalog/where')
  return { edgeLane: req.flow.tag ?? null, upstream: await res.json() }
})
await app.listen({ port: 0, host: '127.0.0.1' })
process.send?.({ port: app.server.address().port })
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))
