import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { NacosClient, type ServiceChange } from '../src/index.ts'
import { memoryLogger, startDev } from './fixtures/target.ts'
import { waitFor } from '@flowtag/test-kit'

t.test('two servers: when one dies, naming and config carry on against the other', async (t) => {
  const servers = [await startDev(), await startDev()]
  const open = new Set(servers)
  t.teardown(() => Promise.all([...open].map((s) => s.close())))
  const logger = memoryLogger()
  const client = new NacosClient({
    serverAddr: servers.map((s) => `127.0.0.1:${s.port}`),
    beatIntervalMs: 200,
    namingPollIntervalMs: 200,
    logger
  })
  t.teardown(() => client.close())

  await client.naming.register('fo', { ip: '127.0.0.1', port: 4400 })
  // The client starts at a random server of its list: the one it talks to dies.
  const dying = servers.find((s) => client.server.origin === `http://127.0.0.1:${s.port}`)!
  const survivor = servers.find((s) => s !== dying)!
  t.ok(dying, 'the client talks to one of its servers')
  const onSurvivor = new NacosClient({ serverAddr: `127.0.0.1:${survivor.port}`, namingPollIntervalMs: 100 })
  t.teardown(() => onSurvivor.close())
  const seen: Array<string | undefined> = []
  client.config.listen('fo-cfg', 'G', (c) => seen.push(c))
  const changes: ServiceChange[] = []
  client.naming.subscribe('fo-peer', (c) => changes.push(c))

  await dying.close()
  open.delete(dying)
  // Beats move to the survivor, which does not know the instance: it comes back there.
  await waitFor('instance on the surviving server', async () => (await onSurvivor.naming.instances('fo')).some((i) => i.port === 4400), 15_000)
  // Over gRPC the redo (the instance listed) comes a moment before the pool records the server.
  await waitFor('the client on the survivor', () => client.server.origin === `http://127.0.0.1:${survivor.port}`, 15_000)
  t.equal(client.server.origin, `http://127.0.0.1:${survivor.port}`)
  t.ok(logger.lines.some((l) => l.msg === 'nacos server failed, trying the next'))

  await onSurvivor.config.publish('fo-cfg', 'G', 'after failover')
  await waitFor('config change via the surviving server', () => seen.includes('after failover'), 15_000)
  await onSurvivor.naming.register('fo-peer', { ip: '127.0.0.1', port: 4401 })
  await waitFor('service change via the surviving server', () => changes.some((c) => c.added.some((i) => i.port === 4401)), 15_000)
})

t.test('clients start at a random server of their list, so the clients of a cluster spread over its nodes', async (t) => {
  const servers = [await startDev(), await startDev()]
  t.teardown(() => Promise.all(servers.map((s) => s.close())))
  const used = new Set<string>()
  // 16 clients all on one server of two: 2 × 2^-16 if the start were random, certain if it were not.
  for (let i = 0; i < 16; i++) {
    const client = new NacosClient({ serverAddr: servers.map((s) => `127.0.0.1:${s.port}`) })
    await client.config.get('spread', 'G')
    used.add(client.server.origin)
    await client.close()
  }
  t.equal(used.size, 2, 'both servers were chosen')
})

t.test('a server answering 5xx is skipped; 4xx is not a reason to rotate', async (t) => {
  const broken = createServer((_req, res) => res.writeHead(503).end('server is STARTINGnow, please try again later!'))
  await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => broken.close(() => r())))
  const dev = await startDev()
  t.teardown(() => dev.close())
  const client = new NacosClient({ serverAddr: [`127.0.0.1:${(broken.address() as AddressInfo).port}`, `127.0.0.1:${dev.port}`] })
  t.teardown(() => client.close())
  await client.config.publish('rot', 'G', 'ok')
  t.equal(await client.config.get('rot', 'G'), 'ok')
  t.equal(client.server.origin, `http://127.0.0.1:${dev.port}`)
  await t.rejects(client.naming.register('svc', { ip: '127.0.0.1', port: 1, weight: 10_001 }), { code: 'FLOWTAG_NACOS_BAD_ARGUMENT' })
})

t.test('per-request timeout, and FLOWTAG_NACOS_UNREACHABLE when every server fails', async (t) => {
  // Accepts the connection, never answers.
  const silent = createServer(() => {})
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    silent.closeAllConnections()
    return new Promise<void>((r) => silent.close(() => r()))
  })
  const client = new NacosClient({ serverAddr: [`127.0.0.1:${(silent.address() as AddressInfo).port}`, '127.0.0.1:1'], timeoutMs: 300 })
  t.teardown(() => client.close())
  await t.rejects(client.config.get('x', 'G'), { code: 'FLOWTAG_NACOS_UNREACHABLE', message: /timed out/ })
})

t.test('address server (endpoint): the list is fetched, then refreshed when stale', async (t) => {
  const a = await startDev()
  const b = await startDev()
  t.teardown(() => Promise.all([a.close(), b.close()]))
  let list = `127.0.0.1:${a.port}\n`
  let served = 0
  const addressServer = createServer((req, res) => {
    served++
    if (req.url === '/nacos/serverlist') res.writeHead(200, { 'content-type': 'text/plain' }).end(list)
    else res.writeHead(404).end()
  })
  await new Promise<void>((r) => addressServer.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => addressServer.close(() => r())))
  const client = new NacosClient({ endpoint: `127.0.0.1:${(addressServer.address() as AddressInfo).port}`, endpointRefreshMs: 1000 })
  t.teardown(() => client.close())
  await client.config.publish('ep', 'G', 'on a')
  t.equal(client.server.origin, `http://127.0.0.1:${a.port}`)
  list = `127.0.0.1:${b.port}\r\n`
  await new Promise((r) => setTimeout(r, 1100))
  // The stale list is refreshed in the background; calls move over once it lands.
  await waitFor('moved to the listed server', async () => {
    await client.config.get('ep', 'G')
    return client.server.origin === `http://127.0.0.1:${b.port}`
  }, 15_000)
  t.equal(await client.config.get('ep', 'G'), undefined, 'b never had it')
  t.ok(served >= 2)

  const broken = new NacosClient({ endpoint: '127.0.0.1:1', timeoutMs: 500 })
  t.teardown(() => broken.close())
  await t.rejects(broken.config.get('x', 'G'), { code: 'FLOWTAG_NACOS_UNREACHABLE' })
})
