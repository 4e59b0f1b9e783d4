// Registration, probes and drain through Nest's lifecycle, on both platforms; SIGTERM with
// enableShutdownHooks in a real process.
import { fork } from 'node:child_process'
import { NacosClient } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import { NestFactory } from '@nestjs/core'
import { Module } from '@nestjs/common'
import t from 'tap'
import { FlowTagService, LaneContext } from '../src/index.ts'
import { adapterOf, FlowTagModule, platforms, startApp, usersModule } from './fixtures/apps.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

async function world (t: { teardown(fn: () => unknown): void }) {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
  t.teardown(() => admin.close())
  return { dev, admin, nacos: { serverAddr: dev.address, ...fastClient } }
}

for (const platform of platforms) {
  t.test(`${platform}: register on listen, probes, deregister then drain on close`, async (t) => {
    const { admin, nacos } = await world(t)
    const module = usersModule('v1', FlowTagModule.forRoot({ service: `probes-${platform}`, version: 'v1', nacos, cacheDir: false, registration: { drainMs: 4000 } }))
    const { app, url } = await startApp(module, platform)
    const service = app.get(FlowTagService)
    const port = Number(new URL(url).port)

    t.same(await (await fetch(`${url}/health`)).json(), { status: 'ok' }, '/health answers')
    await waitFor('registered', async () => (await admin.naming.instances(`probes-${platform}`)).some((i) => i.port === port))
    const ready = await fetch(`${url}/ready`)
    t.equal(ready.status, 200)
    t.same(await ready.json(), { status: 'ready' })
    t.match((await admin.naming.instances(`probes-${platform}`))[0], { metadata: { version: 'v1' } })

    // close: beforeApplicationShutdown deregisters and drains while the server still serves
    let closed = false
    const closing = app.close().then(() => { closed = true })
    await waitFor('deregistered', async () => (await admin.naming.instances(`probes-${platform}`)).length === 0)
    t.equal(closed, false, 'still draining once deregistered')
    const during = await fetch(`${url}/ready`)
    t.equal(during.status, 503, '/ready: 503 while draining')
    t.same(await during.json(), { status: 'not ready', registered: false, draining: true })
    const served = await fetch(`${url}/users/slow`, { headers: { 'x-flow-tag': 'v2' } })
    t.same(await served.json(), { version: 'v1', lane: 'v2' }, 'requests are still served, in their lane, during the drain')
    t.equal(closed, false, 'the drain lasts drainMs')
    await closing
    await t.rejects(fetch(`${url}/health`), 'the server is closed after the drain')
    await t.rejects(service.start(undefined), { code: 'FLOWTAG_SERVICE_CLOSED' }, 'the service is closed with the app')
  })
}

t.test('enableShutdownHooks: SIGTERM deregisters, drains and ends the process', async (t) => {
  const { admin, dev } = await world(t)
  for (const platform of platforms) {
    const child = fork(new URL('./fixtures/shutdown-app.ts', import.meta.url), [platform], { env: { ...process.env, NACOS: dev.address }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    const exited = new Promise<{ code: number | null, signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { port: number }).port))
      child.once('exit', (code) => reject(new Error(`the app exited with ${code} before listening`)))
    })
    await waitFor(`${platform} app registered`, async () => (await admin.naming.instances('shutdown-app')).some((i) => i.port === port))
    child.kill('SIGTERM')
    await waitFor(`${platform} app deregistered`, async () => (await admin.naming.instances('shutdown-app')).length === 0)
    const end = await exited
    t.same(end, { code: null, signal: 'SIGTERM' }, `${platform}: after the hooks, the signal ends the process`)
  }
})

t.test('an app without HTTP (standalone context): the lane context works, nothing registers', async (t) => {
  const { admin, nacos } = await world(t)
  const warnings: string[] = []
  const logger = { debug () {}, info () {}, warn (_o: object, msg?: string) { warnings.push(msg ?? '') }, error () {} }
  class Jobs {}
  Module({ imports: [FlowTagModule.forRoot({ service: 'jobs', nacos, cacheDir: false, logger })] })(Jobs)
  const app = await NestFactory.createApplicationContext(Jobs, { logger: false, abortOnError: false })
  await app.init()
  const lanes = app.get(LaneContext)
  t.equal(lanes.current, undefined, 'outside a flow')
  t.equal(await lanes.run('v2', async () => { await new Promise((resolve) => setTimeout(resolve, 1)); return lanes.current }), 'v2', 'run() enters a lane')
  t.equal(lanes.run(undefined, () => lanes.flow?.tag), undefined, 'run(undefined) is the untagged flow')
  t.throws(() => lanes.run('not a lane!', () => 1), { code: 'FLOWTAG_NEST_BAD_LANE' })
  t.match(warnings, [/no HTTP server/], 'a registration that cannot happen is said once')
  t.same(await admin.naming.instances('jobs'), [])
  await app.close()
})

t.test('init() then a server the app listens on itself: registered once it listens, or at once if it already does', async (t) => {
  const { admin, nacos } = await world(t)
  for (const platform of platforms) {
    const name = `own-listen-${platform}`
    const app = await NestFactory.create(usersModule('v1', FlowTagModule.forRoot({ service: name, version: 'v1', nacos, cacheDir: false })), adapterOf(platform), { logger: false, abortOnError: false })
    t.teardown(() => app.close())
    const server = app.getHttpServer() as import('node:net').Server
    if (platform === 'express') await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)) // listening before init
    await app.init()
    if (platform === 'fastify') await app.listen(0, '127.0.0.1')
    const port = (server.address() as { port: number }).port
    await waitFor(`${name} registered`, async () => (await admin.naming.instances(name)).some((i) => i.port === port))
    t.pass(`${platform}: registered with port ${port}`)
  }
})
