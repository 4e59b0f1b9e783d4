import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import t from 'tap'
import fastifyNacos from '../src/fastify.ts'
import { NacosClient, type ServiceChange } from '../src/index.ts'
import { startDev } from './fixtures/target.ts'
import { waitFor } from '@flowtag/test-kit'

t.test('registers on listen with the real address, serves /health and /ready, leaves before closing', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  // Empty protection off: this watcher is to see the last instance leave.
  const watcher = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, namingPollIntervalMs: 100, namingProtectEmpty: false })
  t.teardown(() => watcher.close())
  const changes: ServiceChange[] = []
  watcher.naming.subscribe('orders', (c) => changes.push(c))

  const app = Fastify()
  await app.register(fastifyNacos, {
    nacos: { serverAddr: `127.0.0.1:${dev.port}` },
    service: 'orders',
    version: 'v2',
    env: 'test',
    weight: 2,
    metadata: { zone: 'a' },
    readyPath: '/readyz'
  })
  // Checked once the server has closed: the instance must already be gone from Nacos by then.
  let goneBeforeClose = false
  let port = 0
  app.addHook('onClose', async () => {
    const direct = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}` })
    goneBeforeClose = !(await direct.naming.instances('orders')).some((i) => i.port === port)
    await direct.close()
  })
  t.teardown(() => app.close())
  t.equal((await app.inject('/readyz')).statusCode, 503, 'not ready before listening')
  await app.listen({ port: 0, host: '127.0.0.1' })
  port = (app.server.address() as { port: number }).port
  await waitFor('registered', () => app.nacos.ready, 15_000)
  await waitFor('visible to others', async () => (await watcher.naming.instances('orders')).length === 1, 15_000)
  await waitFor('subscriber told', () => changes.some((c) => c.added.some((i) => i.port === port)), 15_000)
  t.match((await watcher.naming.instances('orders'))[0], { ip: '127.0.0.1', port, weight: 2, metadata: { version: 'v2', env: 'test', zone: 'a' } })
  t.same((await app.inject('/health')).json(), { status: 'ok' })
  t.same((await app.inject('/readyz')).json(), { status: 'ready' })
  t.equal((await app.inject('/ready')).statusCode, 404, 'ready path is configurable')
  t.equal(app.nacos.discovery, app.nacos.client.naming)

  await app.close()
  t.ok(goneBeforeClose, 'deregistered in preClose')
  t.notOk(app.nacos.ready)
  await waitFor('removed', async () => (await watcher.naming.instances('orders')).length === 0, 15_000)
})

t.test('drain(): deregister, report not ready and wait drainMs while still serving', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const client = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, namingPollIntervalMs: 100 })
  t.teardown(() => client.close())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyNacos, { client, service: 'drainer', drainMs: 300, healthPath: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await waitFor('registered', () => app.nacos.ready, 15_000)
  const drained = app.nacos.drain()
  t.equal(app.nacos.draining, true)
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 'not ready', draining: true })
  await waitFor('deregistered while draining', async () => (await client.naming.instances('drainer')).length === 0, 15_000)
  await drained
  t.equal((await app.inject('/health')).statusCode, 404, 'health route disabled')
  await app.close()
  // A client passed in stays open: it belongs to the caller.
  t.same(await client.naming.instances('drainer'), [])
})

t.test('Nacos down at start: listen anyway and register once it comes up', async (t) => {
  const probe = await startDev()
  const port = probe.port
  await probe.close()
  const app = Fastify()
  await app.register(fastifyNacos, { nacos: { serverAddr: `127.0.0.1:${port}`, timeoutMs: 500 }, service: 'late', retryMs: 100 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  t.equal((await app.inject('/ready')).statusCode, 503)
  await sleep(300)
  const dev = await startDev({ port })
  t.teardown(() => dev.close())
  await waitFor('registered in the background', () => app.nacos.ready, 15_000)
  const watcher = new NacosClient({ serverAddr: `127.0.0.1:${port}` })
  t.teardown(() => watcher.close())
  t.equal((await watcher.naming.instances('late')).length, 1)
})

t.test('failFast: listen fails when Nacos is unreachable', async (t) => {
  const app = Fastify()
  await app.register(fastifyNacos, { nacos: { serverAddr: '127.0.0.1:1', timeoutMs: 500 }, service: 'strict', failFast: true })
  await t.rejects(app.listen({ port: 0, host: '127.0.0.1' }), { code: 'FLOWTAG_NACOS_UNREACHABLE' })
  await app.close()
})

t.test('options are validated', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ nacos: { serverAddr: 'h:1' } }, /"service"/],
    [{ service: 's' }, /"client"/],
    [{ service: 's', nacos: { serverAddr: 'h:1' }, weight: -1 }, /"weight"/],
    [{ service: 's', nacos: { serverAddr: 'h:1' }, readyPath: 'ready' }, /"readyPath"/],
    [{ service: 's', nacos: { serverAddr: 'h:1' }, drainMs: 'long' }, /"drainMs"/],
    [{ service: 's', nacos: { serverAddr: 'h:1', transport: 'udp' } }, /"nacos\.transport"/]
  ]
  for (const [opts, field] of cases) {
    const app = Fastify()
    await t.rejects(async () => {
      await app.register(fastifyNacos, opts as never)
      await app.ready()
    }, { code: 'FLOWTAG_NACOS_BAD_OPTION', message: field })
    await app.close().catch(() => {})
  }
})

t.test('a bad client option names its field as the plugin user wrote it, as data', async (t) => {
  const app = Fastify()
  await t.rejects(async () => {
    await app.register(fastifyNacos, { service: 's', nacos: { serverAddr: 'h:1', tranport: 'grpc' } } as never)
    await app.ready()
  }, {
    code: 'FLOWTAG_NACOS_BAD_OPTION',
    field: 'nacos.tranport',
    path: ['nacos', 'tranport'],
    message: /^@flowtag\/nacos: invalid option "nacos\.tranport": unknown key \(did you mean "transport"\?\); valid keys: /
  })
  await app.close().catch(() => {})
})

t.test('lifecycle: a registration owned elsewhere is served on the probes and run on the hooks', async (t) => {
  const calls: string[] = []
  const state = { ready: false, registered: false, draining: false }
  const lifecycle = {
    get ready () { return state.ready },
    get registered () { return state.registered },
    get draining () { return state.draining },
    check: async () => { calls.push('check') },
    start: async (address: { port: number } | undefined) => { calls.push(`start ${address?.port !== undefined}`); state.registered = state.ready = true },
    drain: async () => { calls.push('drain'); state.draining = true; state.ready = false },
    close: async () => { calls.push('close') }
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyNacos, { lifecycle, readyPath: '/readyz' })
  t.equal(app.hasDecorator('nacos'), false, 'fastify.nacos is the owner\'s to give')
  const before = await app.inject('/readyz')
  t.equal(before.statusCode, 503)
  t.same(before.json(), { status: 'not ready', registered: false, draining: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.same(calls, ['check', 'start true'])
  t.same((await app.inject('/readyz')).json(), { status: 'ready' })
  t.same((await app.inject('/health')).json(), { status: 'ok' })
  await app.close()
  t.same(calls, ['check', 'start true', 'drain', 'close'])
})

t.test('lifecycle with hooks: false: the probes only, the caller runs it', async (t) => {
  let runs = 0
  const lifecycle = { ready: true, registered: true, draining: false, check: async () => { runs++ }, start: async () => { runs++ }, drain: async () => { runs++ }, close: async () => { runs++ } }
  const app = Fastify()
  await app.register(fastifyNacos, { lifecycle, hooks: false, healthPath: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal((await app.inject('/ready')).statusCode, 200)
  t.equal((await app.inject('/health')).statusCode, 404, 'healthPath: false is not served')
  await app.close()
  t.equal(runs, 0)
})

t.test('lifecycle options are checked: a coded error naming the field', async (t) => {
  for (const [options, field] of [
    [{ lifecycle: { ready: true } }, 'lifecycle'],
    [{ lifecycle: { ready: true, registered: true, draining: false, check: async () => {}, start: async () => {}, drain: async () => {}, close: async () => {} }, service: 'orders' }, 'service'],
    [{ lifecycle: { ready: true, registered: true, draining: false, check: async () => {}, start: async () => {}, drain: async () => {}, close: async () => {} }, hooks: 'yes' }, 'hooks']
  ] as const) {
    const app = Fastify()
    await t.rejects(async () => {
      await app.register(fastifyNacos, options as never)
      await app.ready()
    }, { code: 'FLOWTAG_NACOS_BAD_OPTION', field }, field)
    await app.close().catch(() => {})
  }
})
