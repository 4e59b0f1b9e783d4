// A routing failure of `flowtag.fetch` (no instance of the service, unknown service) reaches the
// client as flowtag's coded error with its status (503) and the code in the body, in Fastify and
// in Express: not a bare 500 "fetch failed" with the code hidden in `err.cause`.
import { FlowTagError } from '@flowtag/errors'
import { OutboundError } from '@flowtag/outbound'
import express from 'express'
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import { flowTagService } from '../src/express.ts'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { fastClient, startDev, testerRules } from './fixtures/nacos.ts'

const quiet = { debug () {}, info () {}, warn () {}, error () {} }

t.test('fetch rejects with the routing error\'s code and status, the routing error as its cause', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const ft = flowTagService({ service: 'caller', nacos: { serverAddr: dev.address, ...fastClient }, rules: testerRules, registration: false, signals: false, logger: quiet })
  t.teardown(() => ft.close())
  await ft.service.prepare()
  const err = await ft.fetch('http://nobody-here/x').then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof FlowTagError)
  t.match(err, { code: /^FLOWTAG_OUTBOUND_/, statusCode: 503, message: /nobody-here/ })
  const cause = (err as { cause?: unknown }).cause
  t.ok(cause instanceof OutboundError, 'the cause is the OutboundError, as under undici\'s TypeError before')
  t.match(cause, { code: (err as FlowTagError).code, statusCode: 503, service: 'nobody-here' })
})

t.test('Fastify and Express answer 503 with the code', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const nacos = { serverAddr: dev.address, ...fastClient }

  const fastify = Fastify()
  await fastify.register(fastifyFlowTagService, { service: 'caller-f', nacos, rules: testerRules, registration: false })
  fastify.get('/call', async () => (await fastify.flowtag.fetch('http://nobody-here/x')).text())
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => fastify.close())

  const app = express()
  const logged: unknown[] = []
  const ft = flowTagService({ service: 'caller-e', nacos, rules: testerRules, registration: false, signals: false, logger: { ...quiet, error: (obj: object) => { logged.push(obj) } } })
  app.use(ft)
  app.get('/call', async (_req, res) => { res.send(await (await ft.fetch('http://nobody-here/x')).text()) })
  app.get('/boom', () => { throw new Error('not ours') })
  const server = await ft.listen(app, { port: 0, host: '127.0.0.1' })
  t.teardown(() => ft.close())

  for (const [name, port] of [['fastify', (fastify.server.address() as { port: number }).port], ['express', (server.address() as { port: number }).port]] as const) {
    const res = await request(`http://127.0.0.1:${port}/call`)
    t.equal(res.statusCode, 503, `${name}: 503`)
    const body = await res.body.json() as { statusCode: number, code: string, message: string }
    t.equal(body.statusCode, 503, name)
    t.match(body.code, /^FLOWTAG_OUTBOUND_(UNKNOWN_SERVICE|NO_INSTANCE_IN_LANE)$/, `${name}: the code in the body`)
    t.match(body.message, /nobody-here/, name)
  }
  t.equal(logged.length, 1, 'express: the failure is logged')

  const other = await request(`http://127.0.0.1:${(server.address() as { port: number }).port}/boom`)
  t.equal(other.statusCode, 500, 'express: errors that are not flowtag\'s go on to the next handler')
  await other.body.dump()
})
