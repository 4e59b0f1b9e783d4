// The Express adapter's lifecycle edges: a server the app created itself (attach), a failFast
// listen with Nacos down, calls after close; and the option checks the main suite leaves out.
import { createServer } from 'node:http'
import { NacosClient } from '@flowtag/nacos'
import { listenOnLoopback, waitFor } from '@flowtag/test-kit'
import express from 'express'
import Fastify from 'fastify'
import { pinoHttp } from 'pino-http'
import { Writable } from 'node:stream'
import t from 'tap'
import { flowTagService } from '../src/express.ts'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { createFlowTagService } from '../src/index.ts'
import { fastClient, startDev, testerRules } from './fixtures/nacos.ts'

t.test('attach() registers a server the app listens on itself; closed adapters refuse', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
  t.teardown(() => admin.close())
  const ft = flowTagService({ service: 'attached', version: 'v3', nacos: { serverAddr: dev.address, ...fastClient }, signals: false })
  const app = express()
  app.use(ft)
  app.get('/lane', (req, res) => { res.json({ tag: req.flow.tag ?? null }) })
  const server = createServer(app)
  ft.attach(server)
  const port = await listenOnLoopback(server)
  const listed = await waitFor('the attached server registered', async () => (await admin.naming.instances('attached')).find((i) => i.port === port))
  t.equal(listed.metadata.version, 'v3')
  t.same(await (await fetch(`http://127.0.0.1:${port}/lane`, { headers: { 'x-flow-tag': 'v9' } })).json(), { tag: 'v9' }, 'service mode carries the incoming lane')

  // a second server, already listening when attached: the instance stays the one registered
  const late = createServer(app)
  await listenOnLoopback(late)
  ft.attach(late)
  t.equal((await admin.naming.instances('attached')).length, 1)

  await ft.close()
  t.equal(server.listening, false, 'close stops attached servers too')
  t.equal(late.listening, false)
  t.throws(() => ft.attach(createServer(app)), { code: 'FLOWTAG_SERVICE_CLOSED' })
  await t.rejects(ft.listen(app), { code: 'FLOWTAG_SERVICE_CLOSED' })
})

t.test('with pino-http in front, every log line of the request carries its lane', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({ write (chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l)); done() } })
  const ft = flowTagService({ service: 'logged', nacos: { serverAddr: '127.0.0.1:1', timeoutMs: 300 }, registration: false, signals: false })
  t.teardown(() => ft.close())
  const app = express()
  app.use(pinoHttp({ autoLogging: false }, sink))
  app.use(ft)
  app.get('/work', (req, res) => { req.log.info('working'); res.json({ ok: true }) })
  const server = createServer(app)
  t.teardown(() => server.close())
  const port = await listenOnLoopback(server)
  await (await fetch(`http://127.0.0.1:${port}/work`, { headers: { 'x-flow-tag': 'v2' } })).json()
  await (await fetch(`http://127.0.0.1:${port}/work`)).json()
  t.same(lines.filter((l) => l.msg === 'working').map((l) => l.lane), ['v2', 'none'])
})

t.test('failFast listen with Nacos down rejects and leaves no server listening', async (t) => {
  const ft = flowTagService({
    service: 'doomed',
    nacos: { serverAddr: '127.0.0.1:1', timeoutMs: 300, recoveryProbeMs: 100 },
    registration: { failFast: true },
    signals: false
  })
  t.teardown(() => ft.close())
  const app = express()
  app.use(ft)
  await t.rejects(ft.listen(app, { port: 0, host: '127.0.0.1' }), { code: 'FLOWTAG_NACOS_UNREACHABLE' })
})

t.test('the option checks the main suite leaves out', async (t) => {
  const nacos = { serverAddr: '127.0.0.1:1' }
  t.throws(() => createFlowTagService({ service: 's', nacos, rules: 'rules.json' as never }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /invalid option "rules": expected \{ dataId, group \}/ })
  t.throws(() => createFlowTagService({ service: 's', nacos, rules: [] as never }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /invalid option "rules"/ })
  t.throws(() => createFlowTagService(undefined as never), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /invalid option "(service|nacos)"/ })
})

t.test('healthPath and readyPath false: no probe routes', async (t) => {
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'noprobes', nacos: { serverAddr: '127.0.0.1:1' }, rules: testerRules, registration: false, healthPath: false, readyPath: false })
  t.teardown(() => app.close())
  t.equal((await app.inject('/health')).statusCode, 404)
  t.equal((await app.inject('/ready')).statusCode, 404)
})
