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

t.test('Fastify: /health answers while /ready follows the service; metrics false records nothing', async (t) => {
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'probes', nacos: { serverAddr: '127.0.0.1:1' }, rules: testerRules, registration: false, metrics: false })
  t.teardown(() => app.close())
  t.equal(app.flowtag.metrics, undefined)
  t.same((await app.inject('/health')).json(), { status: 'ok' })
  t.equal((await app.inject('/ready')).statusCode, 200)
  await app.flowtag.drain()
  t.equal((await app.inject('/ready')).statusCode, 503, 'not ready while draining')
  t.same((await app.inject('/health')).json(), { status: 'ok' }, 'alive while draining')
})

t.test('healthPath and readyPath false: no probe routes', async (t) => {
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'noprobes', nacos: { serverAddr: '127.0.0.1:1' }, rules: testerRules, registration: false, healthPath: false, readyPath: false })
  t.teardown(() => app.close())
  t.equal((await app.inject('/health')).statusCode, 404)
  t.equal((await app.inject('/ready')).statusCode, 404)
})

t.test('an Express edge decides lanes from the query and the client address; drain() deregisters while serving', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
  t.teardown(() => admin.close())
  const rules = {
    version: 1,
    rules: [
      { name: 'beta', when: { query: { beta: { equals: '1' } } }, lane: 'v2' },
      { name: 'office', when: { ip: ['127.0.0.0/8'] }, lane: 'v3' }
    ],
    default: 'v1'
  }
  const ft = flowTagService({ service: 'edge-x', mode: 'edge', nacos: { serverAddr: dev.address, ...fastClient }, rules, signals: false })
  t.teardown(() => ft.close())
  const app = express()
  app.use(ft)
  app.get('/lane', (req, res) => { res.json({ tag: req.flow.tag ?? null, rule: req.flow.decision?.rule ?? null }) })
  const server = await ft.listen(app, { host: '127.0.0.1' }) // no port: any free one
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  await waitFor('registered', async () => (await admin.naming.instances('edge-x')).length === 1)

  t.same(await (await fetch(`${base}/lane?beta=1`)).json(), { tag: 'v2', rule: 'beta' }, 'the query decides')
  t.same(await (await fetch(`${base}/lane`, { headers: { 'x-flow-tag': 'v9' } })).json(), { tag: 'v3', rule: 'office' }, 'the client address decides; a client-sent tag is ignored at the edge')
  t.equal((await fetch(`${base}/nowhere`)).status, 404, 'a request no route takes is answered (and measured without a route)')
  t.equal((await fetch(`${base}/health`, { method: 'HEAD' })).status, 200, 'HEAD /health')

  await ft.drain()
  t.equal(ft.service.draining, true)
  await waitFor('deregistered', async () => (await admin.naming.instances('edge-x')).length === 0)
  const ready = await fetch(`${base}/ready`)
  t.equal(ready.status, 503)
  t.match(await ready.json(), { status: 'not ready', draining: true })
  t.equal((await fetch(`${base}/health`)).status, 200, 'alive while draining')
  t.equal((await fetch(`${base}/lane`)).status, 200, 'still serving while draining')
})

t.test('Express: a port in use rejects listen; a signal the app also handles closes the service and leaves the process be', async (t) => {
  const busy = createServer()
  const port = await listenOnLoopback(busy)
  t.teardown(() => new Promise((resolve) => busy.close(resolve)))
  const nacos = { serverAddr: '127.0.0.1:1', timeoutMs: 300 }
  const taken = flowTagService({ service: 'busy', nacos, registration: false, signals: false })
  await t.rejects(taken.listen(express(), { port, host: '127.0.0.1' }), { code: 'EADDRINUSE' })
  await taken.close() // the server that never listened is let go

  const ft = flowTagService({ service: 'hup', nacos, registration: false, signals: ['SIGHUP'] })
  t.teardown(() => ft.close())
  const app = express()
  app.use(ft)
  const before = process.listenerCount('SIGHUP')
  const one = createServer(app)
  const two = createServer(app)
  ft.attach(one)
  ft.attach(two)
  t.equal(process.listenerCount('SIGHUP'), before + 1, 'one signal listener for two servers')
  const base = `http://127.0.0.1:${await listenOnLoopback(one)}`
  await listenOnLoopback(two)
  t.equal((await fetch(`${base}/ready`)).status, 200, 'ready without registration')
  await ft.drain()
  t.same(await (await fetch(`${base}/ready`)).json(), { status: 'not ready', registered: false, draining: true }, 'not ready while draining')

  let theApps = 0
  const appsOwn = (): void => { theApps++ }
  process.on('SIGHUP', appsOwn)
  t.teardown(() => { process.off('SIGHUP', appsOwn) })
  process.emit('SIGHUP', 'SIGHUP')
  await waitFor('both servers stopped', () => !one.listening && !two.listening)
  t.equal(theApps, 1, 'the app\'s own listener ran')
  t.equal(process.listenerCount('SIGHUP'), before + 1, 'ours is gone, the app\'s stays: the process is not killed')
  await t.rejects(ft.listen(app), { code: 'FLOWTAG_SERVICE_CLOSED' })
})
