// The official Node SDK (npm `nacos`, HTTP v1) as a test peer: it must not tell the dev server from Nacos.
import t from 'tap'
import nacos from 'nacos'
import { waitFor } from '@flowtag/test-kit'
import { start } from './fixtures/nacos.ts'

const quiet = { info () {}, warn () {}, error () {}, debug () {}, log () {} } as unknown as Console

// The SDK's bundled typings lag its JavaScript (no metadata on Instance, no close()): type what is used.
interface Host {
  ip: string
  port: number
  metadata?: Record<string, string>
  healthy?: boolean
}
interface NamingClient {
  ready(): Promise<void>
  subscribe(info: { serviceName: string }, listener: (hosts: Host[]) => void): void
  registerInstance(service: string, instance: Host): Promise<void>
  deregisterInstance(service: string, instance: Host): Promise<void>
  getAllInstances(service: string): Promise<Host[]>
  close(): void
}

t.test('naming: register, list, subscribe sees added and removed, deregister', async (t) => {
  const { server, json } = await start(t, { push: { delayMs: 20 } })
  const client = new nacos.NacosNamingClient({ logger: quiet, serverList: server.address, namespace: 'public' }) as unknown as NamingClient
  await client.ready()

  const seen: number[][] = []
  client.subscribe({ serviceName: 'orders' }, (hosts) => seen.push(hosts.map((h) => h.port).sort()))

  await client.registerInstance('orders', { ip: '127.0.0.1', port: 9001, metadata: { version: 'v1' } })
  await client.registerInstance('orders', { ip: '127.0.0.1', port: 9002, metadata: { version: 'v2' } })
  // raw HTTP agrees on what the SDK registered
  t.equal((await json('GET', '/v1/ns/instance/list', { serviceName: 'orders' })).hosts.length, 2)

  // pushed over UDP (well before the SDK's 10 s refresh)
  await waitFor('the SDK to see 9001 and 9002', () => seen.some((p) => p.join() === '9001,9002'), 8000)
  await client.deregisterInstance('orders', { ip: '127.0.0.1', port: 9001 })
  await waitFor('the SDK to see 9002 alone', () => seen.at(-1)?.join() === '9002', 8000)
  t.pass('subscriber saw the instance added and removed')

  const all = await client.getAllInstances('orders')
  t.same(all.map((i) => i.port), [9002])
  t.match(all[0], { metadata: { version: 'v2' }, healthy: true })
  await client.deregisterInstance('orders', { ip: '127.0.0.1', port: 9002 })
  t.same((await json('GET', '/v1/ns/instance/list', { serviceName: 'orders' })).hosts, [])
  client.close()
})

t.test('config: publish, get, subscribe sees each change, remove', async (t) => {
  const { server, call } = await start(t)
  const client = new nacos.NacosConfigClient({ serverAddr: server.address, namespace: '' })
  await client.ready()

  t.equal(await client.publishSingle('rules.json', 'FLOWTAG', '{"v":1}'), true)
  t.equal(await client.getConfig('rules.json', 'FLOWTAG'), '{"v":1}')
  const changes: Array<string | null> = []
  client.subscribe({ dataId: 'rules.json', group: 'FLOWTAG' }, (content: string | null) => changes.push(content))
  await waitFor('the SDK to see v1', () => changes.includes('{"v":1}'))
  await client.publishSingle('rules.json', 'FLOWTAG', '{"v":2}')
  await waitFor('the SDK to see v2', () => changes.includes('{"v":2}'))
  await client.publishSingle('rules.json', 'FLOWTAG', '{"v":3}')
  await waitFor('the SDK to see v3', () => changes.includes('{"v":3}'))
  t.equal(await client.remove('rules.json', 'FLOWTAG'), true)
  t.equal(await client.getConfig('rules.json', 'FLOWTAG'), null)
  client.unSubscribe({ dataId: 'rules.json', group: 'FLOWTAG' }, () => {})
  // The SDK's close() leaves its held long poll open and drops its error listeners, so a server
  // closed under it surfaces as an uncaught error: release the poll with a change first.
  client.close()
  await call('POST', '/v1/cs/configs', { dataId: 'rules.json', group: 'FLOWTAG', content: 'bye' })
  await new Promise((r) => setTimeout(r, 200))
})
