// NacosRegistration without any framework: a plain node:http server.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { NacosClient, NacosRegistration } from '../src/index.ts'
import { startDev } from './fixtures/target.ts'
import { waitFor } from '@flowtag/test-kit'

async function listen (t: { teardown(fn: () => unknown): void }): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((_req, res) => res.end('ok'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { server, address: server.address() as AddressInfo }
}

t.test('start registers the listened address; drain deregisters, waits drainMs and is idempotent', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const client = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, namingPollIntervalMs: 100 })
  t.teardown(() => client.close())
  const { address } = await listen(t)
  const registration = new NacosRegistration(client, { service: 'plain', version: 'v3', metadata: { zone: 'b' }, drainMs: 200 })
  t.equal(registration.ready, false, 'not ready before start')
  await registration.start(address)
  await waitFor('registered', () => registration.ready, 15_000)
  t.match(registration.instance, { ip: '127.0.0.1', port: address.port, metadata: { version: 'v3', zone: 'b' } })
  const [listed] = await client.naming.instances('plain')
  t.match(listed, { port: address.port, metadata: { version: 'v3' } })

  const started = Date.now()
  const first = registration.drain()
  t.equal(registration.draining, true)
  t.equal(registration.ready, false, 'not ready as soon as draining starts')
  t.equal(registration.drain(), first, 'drain() is idempotent')
  await first
  t.ok(Date.now() - started >= 190, 'waited drainMs')
  await waitFor('gone from nacos', async () => (await client.naming.instances('plain')).length === 0, 15_000)
  await registration.close()
})

t.test('close() without drain() deregisters at once', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const client = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, namingPollIntervalMs: 100 })
  t.teardown(() => client.close())
  const { address } = await listen(t)
  const registration = new NacosRegistration(client, { service: 'closer', drainMs: 60_000, ip: '127.0.0.2' })
  await registration.start({ address: '0.0.0.0', port: address.port })
  await waitFor('registered', () => registration.ready, 15_000)
  t.equal(registration.instance?.ip, '127.0.0.2', 'ip option wins over the listened address')
  const started = Date.now()
  await registration.close()
  t.ok(Date.now() - started < 5000, 'no drain wait on close')
  t.equal(registration.registered, false)
  await waitFor('gone from nacos', async () => (await client.naming.instances('closer')).length === 0, 15_000)
})

t.test('failFast: check() and start() reject when Nacos is unreachable', async (t) => {
  const client = new NacosClient({ serverAddr: '127.0.0.1:1', timeoutMs: 300 })
  t.teardown(() => client.close())
  const registration = new NacosRegistration(client, { service: 'strict', failFast: true })
  await t.rejects(registration.check(), { code: 'FLOWTAG_NACOS_UNREACHABLE' })
  await t.rejects(registration.start({ port: 4000 }), { code: 'FLOWTAG_NACOS_UNREACHABLE' })
  t.equal(registration.ready, false)
  await registration.close()
})

t.test('bad options and a missing port name the field', async (t) => {
  const client = new NacosClient({ serverAddr: '127.0.0.1:1' })
  t.teardown(() => client.close())
  t.throws(() => new NacosRegistration(client, { service: '' }), { code: 'FLOWTAG_NACOS_BAD_OPTION', message: /"service"/ })
  t.throws(() => new NacosRegistration(client, { service: 's', drainMs: -1 }), { message: /"drainMs"/ })
  t.throws(() => new NacosRegistration(client, { service: 's', typo: 1 } as never), { message: /"typo"/ })
  const registration = new NacosRegistration(client, { service: 's' })
  await t.rejects(registration.start(undefined), { code: 'FLOWTAG_NACOS_BAD_OPTION', message: /"port"/ })
})

t.test('started while Nacos is down: registers within a second of Nacos answering, not at the end of its back-off', async (t) => {
  // A port with nothing on it yet: the dev server starts there later.
  const probe = await startDev()
  const port = probe.port
  await probe.close()
  const client = new NacosClient({ serverAddr: `127.0.0.1:${port}` })
  t.teardown(() => client.close())
  const { address } = await listen(t)
  const reg = new NacosRegistration(client, { service: 'late', retryMs: 1000 })
  t.teardown(() => reg.close())
  await reg.start(address)
  // Failures at 0, 1, 3 and 7 s: the wait in progress is now 8 s long.
  await new Promise((r) => setTimeout(r, 4000))
  t.equal(reg.registered, false)
  const dev = await startDev({ port })
  t.teardown(() => dev.close())
  const upAt = Date.now()
  await waitFor('registered', () => reg.registered, 10_000)
  t.ok(Date.now() - upAt <= 1500, `registered ${Date.now() - upAt} ms after Nacos answered (<= 1500; the back-off alone would wait up to 8 s)`)
})
