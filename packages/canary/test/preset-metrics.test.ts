// The controller reads a service that uses the preset's own endpoint (`metrics: { serve: true }`
// of @flowtag/service): no OpenTelemetry wiring in the app, yet its lane's figures are there.
import Fastify from 'fastify'
import t from 'tap'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { NacosClient } from '@flowtag/nacos'
import { fastifyFlowTagService } from '@flowtag/service/fastify'
import { waitFor } from '@flowtag/test-kit'
import { ScrapeSource } from '../src/index.ts'

t.test('ScrapeSource reads the figures a preset serves itself', async (t) => {
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => dev.close())
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'user-service', version: 'v2', nacos: { serverAddr: dev.address }, metrics: { serve: true } })
  app.get('/users/:id', async (request, reply) => (request.params as { id: string }).id === '0' ? reply.code(500).send({}) : { ok: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  for (let i = 1; i <= 4; i++) await app.inject({ url: `/users/${i % 4}`, headers: { 'x-flow-tag': 'v2' } })

  const nacos = new NacosClient({ serverAddr: dev.address })
  t.teardown(() => nacos.close())
  await waitFor('user-service registered', async () => (await nacos.naming.instances('user-service')).length === 1)
  const reading = await new ScrapeSource({ discovery: nacos.naming }).read('user-service')
  const [instance] = [...reading.instances.values()]
  t.equal(instance?.lane, 'v2')
  t.equal(instance?.error, undefined, 'scraped')
  t.equal(instance?.figures?.requests, 4, 'four requests, the scrape not among them')
  t.equal(instance?.figures?.serverErrors, 1)
  t.ok((instance?.startTime ?? 0) > 0, 'the process start time, to see restarts')
})
