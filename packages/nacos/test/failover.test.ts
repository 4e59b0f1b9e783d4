import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { NacosClient, type ServiceChange } from '../src/index.ts'
import { memoryLogger, startDev } from './fixtures/target.ts'
import { waitFor } from '@flowtag/test-kit'

t.test('two servers: when one dies, naming and config carry on against the other', async (t) => {
  const a = await startDev()
  const b = await startDev()
  let aOpen = true
  t.teardown(async () => {
    if (aOpen) await a.close()
    await b.close()
  })
  const logger = memoryLogger()
  const client = new NacosClient({
    serverAddr: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`],
    beatIntervalMs: 200,
    namingPollIntervalMs: 200,
    logger
  })
  t.teardown(() => client.close())
  const onB = new NacosClient({ serverAddr: `127.0.0.1:${b.port}`, namingPollIntervalMs: 100 })
  t.teardown(() => onB.close())

  await client.naming.register('fo', { ip: '127.0.0.1', port: 4400 })
  t.equal(client.server.origin, `http://127.0.0.1:${a.port}`)
  const seen: Array<string | undefined> = []
  client.config.listen('fo-cfg', 'G', (c) => seen.push(c))
  const changes: ServiceChange[] = []
  client.naming.subscribe('fo-peer', (c) => changes.push(c))

  await a.close()
  aOpen = false
  // Beats move to b, which does not know the instance: it comes back there.
  await waitFor('instance on the second server', async () => (await onB.naming.instances('fo')).some((i) => i.port === 4400), 15_000)
  t.equal(client.server.origin, `http://127.0.0.1:${b.port}`)
  t.ok(logger.lines.some((l) => l.msg === 'nacos server failed, trying the next'))

  await onB.config.publish('fo-cfg', 'G', 'after failover')
  await waitFor('config change via the second server', () => seen.includes('after failover'), 15_000)
  await onB.naming.register('fo-peer', { ip: '127.0.0.1', port: 4401 })
  await waitFor('service change via the second server', () => changes.some((c) => c.added.some((i) => i.port === 4401)), 15_000)
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
