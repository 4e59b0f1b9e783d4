// The per-request halves (fastifyFlowTagRequests, flowTagRequests) for a service whose lifecycle
// the caller drives (@flowtag/nestjs), and validateServiceOptions, which creates nothing.
import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import Fastify from 'fastify'
import t from 'tap'
import { flowTagRequests } from '../src/express.ts'
import { fastifyFlowTagRequests } from '../src/fastify.ts'
import { createFlowTagService, validateServiceOptions } from '../src/index.ts'

const nacos = { serverAddr: '127.0.0.1:1' }

t.test('Fastify and Express: probes and tagging, no lifecycle of their own', async (t) => {
  const service = createFlowTagService({ service: 'driven', nacos, cacheDir: false, registration: false })
  t.teardown(() => service.close())

  const fastify = Fastify()
  await fastify.register(fastifyFlowTagRequests, { service })
  fastify.get('/lane', async (request) => ({ lane: request.flow.tag ?? null }))
  t.equal(fastify.flowtag, service, 'fastify.flowtag is the given service')
  t.same((await fastify.inject('/health')).json(), { status: 'ok' })
  t.same((await fastify.inject('/ready')).json(), { status: 'ready' })
  t.same((await fastify.inject({ url: '/lane', headers: { 'x-flow-tag': 'v2' } })).json(), { lane: 'v2' })
  await fastify.close()

  const app = express()
  app.use(flowTagRequests(service))
  app.get('/lane', (req, res) => { res.json({ lane: req.flow.tag ?? null }) })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  t.same(await (await fetch(`${url}/health`)).json(), { status: 'ok' })
  t.same(await (await fetch(`${url}/lane`, { headers: { 'x-flow-tag': 'v3' } })).json(), { lane: 'v3' })

  await service.drain()
  t.equal((await fetch(`${url}/ready`)).status, 503, 'the caller drains; the probe follows')
  await t.resolves(service.prepare(), 'closing Fastify did not close the service: its lifecycle is the caller\'s')
})

t.test('Fastify: the preset composes the context and nacos plugins instead of copying their hooks', async (t) => {
  const service = createFlowTagService({ service: 'composed', nacos, cacheDir: false, registration: false })
  t.teardown(() => service.close())
  const fastify = Fastify()
  await fastify.register(fastifyFlowTagRequests, { service })
  t.teardown(() => fastify.close())
  fastify.get('/lane', async (request) => ({ lane: request.flow.tag ?? null }))
  t.ok(fastify.hasPlugin('@flowtag/context'), 'the context plugin tags the requests')
  t.ok(fastify.hasPlugin('@flowtag/nacos'), 'the nacos plugin serves the probes')
  t.equal(fastify.flowTagger, service.tagger, 'registered with the service\'s own tagger')
  t.same((await fastify.inject({ url: '/lane', headers: { 'x-flow-tag': 'v2' } })).json(), { lane: 'v2' })
  t.equal(service.tagger.stats.trusted, 1, 'one decision per request')
})

t.test('validateServiceOptions: the preset\'s error, and nothing created', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'flowtag-validate-')), 'cache')
  t.doesNotThrow(() => validateServiceOptions({ service: 'ok', nacos, cacheDir: dir, rules: { dataId: 'r.json' } }))
  t.notOk(existsSync(dir), 'no cache folder made')
  t.throws(() => validateServiceOptions({ service: 'gw', mode: 'edge', nacos }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /invalid option "rules"/ })
})
