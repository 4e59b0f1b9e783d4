// Naming against real processes: the dev server always, a real Nacos when NACOS_SERVER_ADDR is set.
import t from 'tap'
import { NacosClient, type NacosClientOptions, type ServiceChange } from '../src/index.ts'
import { flavours, memoryLogger, startDev, targets } from './fixtures/target.ts'
import { unique, waitFor } from '@flowtag/test-kit'

for (const target of targets()) {
  const spoken = await flavours(target.kind)
  for (const transport of [...spoken, 'http'] as const) {
    t.test(`${target.kind} ${transport}: register, discover, subscribe, deregister`, async (t) => {
      const server = await target.start()
      t.teardown(() => server.close())
      const base: NacosClientOptions = {
        serverAddr: server.addr,
        transport,
        namingPollIntervalMs: 200,
        ...(server.username === undefined ? {} : { username: server.username, password: server.password })
      }
      const a = new NacosClient(base)
      const b = new NacosClient(base)
      t.teardown(() => Promise.all([a.close(), b.close()]))
      const svc = unique('naming')

      t.same(await b.naming.instances(svc), [], 'an unknown service is empty, not an error')
      const changes: ServiceChange[] = []
      b.naming.subscribe(svc, (c) => changes.push(c))

      await a.naming.register(svc, { ip: '127.0.0.1', port: 4001, metadata: { version: 'v1', env: 'test' } })
      await waitFor('added event', () => changes.some((c) => c.added.some((i) => i.port === 4001)), 15_000)
      const [first] = await b.naming.instances(svc)
      t.match(first, { ip: '127.0.0.1', port: 4001, weight: 1, healthy: true, enabled: true, serviceName: svc, metadata: { version: 'v1', env: 'test' } })
      t.equal(a.server.transport, transport === 'http' ? spoken[0] : transport, 'http prefers v1 where both exist')

      await a.naming.register(svc, { ip: '127.0.0.1', port: 4002, weight: 3, metadata: { version: 'v2' } })
      await waitFor('two instances', async () => (await b.naming.instances(svc)).length === 2, 15_000)
      t.equal((await b.naming.selectHealthy(svc)).length, 2)
      t.ok([4001, 4002].includes((await b.naming.selectOne(svc))?.port as number))

      await a.naming.update(svc, { ip: '127.0.0.1', port: 4002, weight: 5, metadata: { version: 'v2' } })
      await waitFor('changed event', () => changes.some((c) => c.changed.some((i) => i.port === 4002 && i.weight === 5)), 15_000)

      await a.naming.deregister(svc, { ip: '127.0.0.1', port: 4001 })
      await waitFor('removed event', () => changes.some((c) => c.removed.some((i) => i.port === 4001)), 15_000)
      t.same((await b.naming.instances(svc)).map((i) => i.port), [4002])
      t.notOk(a.naming.isRegistered(svc, { ip: '127.0.0.1', port: 4001 }))
      t.ok(a.naming.isRegistered(svc, { ip: '127.0.0.1', port: 4002 }))
      await a.naming.deregister(svc, { ip: '127.0.0.1', port: 4002 })
    })
  }
}

t.test('v1 subscriptions get UDP push: changes arrive well before the next poll', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const opts: NacosClientOptions = { serverAddr: `127.0.0.1:${dev.port}`, transport: 'http-v1', namingPollIntervalMs: 600_000 }
  const a = new NacosClient(opts)
  const b = new NacosClient(opts)
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const changes: ServiceChange[] = []
  b.naming.subscribe('pushed', (c) => changes.push(c))
  t.same(await b.naming.instances('pushed'), [])
  await a.naming.register('pushed', { ip: '127.0.0.1', port: 4100 })
  // The poll is 10 minutes away: only a push can deliver this in time.
  await waitFor('pushed add', () => changes.some((c) => c.added.some((i) => i.port === 4100)), 10_000)
  // A second instance stays, so the removal is not an empty list (which empty protection holds).
  await a.naming.register('pushed', { ip: '127.0.0.1', port: 4101 })
  await waitFor('pushed second add', () => changes.some((c) => c.added.some((i) => i.port === 4101)), 10_000)
  await a.naming.deregister('pushed', { ip: '127.0.0.1', port: 4100 })
  await waitFor('pushed removal', () => changes.some((c) => c.removed.some((i) => i.port === 4100)), 10_000)
})

for (const transport of ['http-v1', 'http-v3'] as const) {
  t.test(`${transport}: re-registers after a server restart on the same port`, async (t) => {
    let dev = await startDev()
    const port = dev.port
    t.teardown(() => dev.close())
    const logger = memoryLogger()
    const client = new NacosClient({ serverAddr: `127.0.0.1:${port}`, transport, logger, beatIntervalMs: 300 })
    t.teardown(() => client.close())
    await client.naming.register('phoenix', { ip: '127.0.0.1', port: 4200 })
    // Let a beat or two go through, so v1 switches to light beats.
    await waitFor('register log', () => logger.lines.length > 0, 15_000)
    await new Promise((r) => setTimeout(r, 800))
    await dev.close()
    dev = await startDev({ port })
    const probe = new NacosClient({ serverAddr: `127.0.0.1:${port}`, transport: 'http-v1', namingPollIntervalMs: 100 })
    t.teardown(() => probe.close())
    await waitFor('instance back after restart', async () => (await probe.naming.instances('phoenix').catch(() => [])).some((i) => i.port === 4200), 20_000)
    t.ok(logger.lines.some((l) => l.msg === 'nacos instance re-registered'), 're-registered on 20404/21003')
  })
}
