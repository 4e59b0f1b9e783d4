// metrics: { serve: true }: the preset serves its own per-lane figures as Prometheus text, with
// no OpenTelemetry SDK in the app (what a canary controller reads).
import express from 'express'
import Fastify from 'fastify'
import t from 'tap'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { flowTagService } from '../src/express.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

const count = (text: string, lane: string, status: number): number => {
  const line = text.split('\n').find((l) => /^http_server_request_duration(_seconds)?_count\{/.test(l) && l.includes(`flowtag_lane="${lane}"`) && l.includes(`http_response_status_code="${status}"`))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('Fastify: the preset serves http.server.request.duration by lane at metrics.path; scrapes are not traffic', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'user-service', version: 'v2', nacos: { serverAddr: dev.address, ...fastClient }, metrics: { serve: true } })
  app.get('/ok', async () => ({ ok: true }))
  app.get('/fail', async (_request, reply) => reply.code(500).send({ failed: true }))
  await app.ready()
  t.teardown(() => app.close())
  for (let i = 0; i < 3; i++) await app.inject({ url: '/ok', headers: { 'x-flow-tag': 'v2' } })
  await app.inject({ url: '/fail', headers: { 'x-flow-tag': 'v2' } })
  await app.inject({ url: '/metrics' })
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(count(res.body, 'v2', 200), 3, 'three v2 answers of 200')
  t.equal(count(res.body, 'v2', 500), 1, 'one v2 answer of 500')
  t.notMatch(res.body, /http_route="\/metrics"/, 'the scrape itself is not recorded')
  t.match(res.body, /flowtag_process_start_time/, 'the start time, for restarts')
  t.match(res.body, /^target_info\{[^}]*service_name="user-service"[^}]*service_version="v2"/m, 'the scrape says whose figures they are')
  t.notMatch(res.body, /unknown_service/)
})

t.test('Express: the same route through the middleware', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const app = express()
  const ft = flowTagService({ service: 'user-service', version: 'v2', nacos: { serverAddr: dev.address, ...fastClient }, metrics: { serve: true } })
  app.use(ft)
  app.get('/ok', (_req, res) => { res.json({ ok: true }) })
  const server = await ft.listen(app, { port: 0, host: '127.0.0.1' })
  t.teardown(() => ft.close())
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  for (let i = 0; i < 2; i++) await (await fetch(`${base}/ok`, { headers: { 'x-flow-tag': 'v2' } })).text()
  const res = await fetch(`${base}/metrics`)
  t.equal(res.status, 200)
  const text = await res.text()
  t.equal(count(text, 'v2', 200), 2)
  t.match(text, /^target_info\{[^}]*service_name="user-service"/m, 'named in target_info')
})

t.test('serve needs a path; without serve the preset serves no route', async (t) => {
  t.throws(() => flowTagService({ service: 's', nacos: { serverAddr: '127.0.0.1:1' }, metrics: { path: false, serve: true } }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /metrics\.serve/ })
  const dev = await startDev()
  t.teardown(() => dev.close())
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'user-service', nacos: { serverAddr: dev.address, ...fastClient } })
  await app.ready()
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 404, 'the app serves its own (or none)')
})
