import { createSocket, type Socket } from 'node:dgram'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { waitFor } from '@flowtag/test-kit'
import { start } from './fixtures/nacos.ts'

const UA = { 'user-agent': 'Nacos-Java-Client:v2.4.0' }

interface Packet {
  raw: string
  type: string
  data: { name: string; hosts: Array<{ port: number }> }
  lastRefTime: string
  gzipped: boolean
  from: { address: string; port: number }
}

/** A UDP subscriber on loopback that records packets and acks them unless told not to. */
async function subscriber (t: { teardown(fn: () => unknown): void }, ack = true) {
  const socket: Socket = createSocket('udp4')
  const packets: Packet[] = []
  socket.on('message', (msg, from) => {
    const gzipped = msg[0] === 0x1f && msg[1] === 0x8b
    const raw = (gzipped ? gunzipSync(msg) : msg).toString('utf8')
    const outer = JSON.parse(raw)
    const lastRefTime = /"lastRefTime":(\d+)}$/.exec(raw)![1]!
    packets.push({ raw, type: outer.type, data: JSON.parse(outer.data), lastRefTime, gzipped, from })
    if (ack) socket.send(JSON.stringify({ type: 'push-ack', lastRefTime, data: '' }), from.port, from.address)
  })
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r))
  t.teardown(() => socket.close())
  return { port: socket.address().port, packets }
}

t.test('a recognised SDK that gives udpPort is pushed each change and its acks are matched', async (t) => {
  const { server, call } = await start(t, { push: { delayMs: 10 } })
  const sub = await subscriber(t)
  await call('GET', '/v1/ns/instance/list', { serviceName: 'orders', udpPort: String(sub.port), clientIP: '127.0.0.1' }, { headers: UA })
  // the subscription itself is pushed once
  const first = await waitFor('a UDP push', () => sub.packets[0], 5000)
  t.equal(first.type, 'dom')
  t.equal(first.data.name, 'DEFAULT_GROUP@@orders')
  t.notOk('groupName' in first.data, 'pushed ServiceInfo carries no groupName, as Nacos sends it')
  t.match(first.lastRefTime, /^\d+$/)

  await call('POST', '/v1/ns/instance', { serviceName: 'orders', ip: '127.0.0.1', port: '9001' })
  const added = await waitFor('a UDP push', () => sub.packets.find((p) => p.data.hosts.length === 1), 5000)
  t.equal(added.data.hosts[0]!.port, 9001)
  await call('DELETE', '/v1/ns/instance', { serviceName: 'orders', ip: '127.0.0.1', port: '9001' })
  await waitFor('a UDP push', () => (sub.packets.length >= 3 && sub.packets.at(-1)!.data.hosts.length === 0 ? true : undefined), 5000)

  const metrics = await fetch(`${server.url}/nacos/v1/ns/operator/metrics?onlyStatus=false`).then((r) => r.json() as Promise<{ subscribeCount: number }>)
  t.equal(metrics.subscribeCount, 1)
})

t.test('an unacked packet is resent once after the ack timeout, then dropped', async (t) => {
  const { call } = await start(t, { push: { delayMs: 10, ackTimeoutMs: 200 } })
  const sub = await subscriber(t, false)
  await call('GET', '/v1/ns/instance/list', { serviceName: 'orders', udpPort: String(sub.port) }, { headers: UA })
  await waitFor('a UDP push', () => (sub.packets.length >= 2 ? true : undefined), 5000)
  t.equal(sub.packets[1]!.lastRefTime, sub.packets[0]!.lastRefTime, 'the resend is the same packet')
  await new Promise((r) => setTimeout(r, 600))
  t.equal(sub.packets.length, 2, 'no second resend')
})

t.test('acked packets are not resent', async (t) => {
  const { call } = await start(t, { push: { delayMs: 10, ackTimeoutMs: 200 } })
  const sub = await subscriber(t, true)
  await call('GET', '/v1/ns/instance/list', { serviceName: 'orders', udpPort: String(sub.port) }, { headers: UA })
  await waitFor('a UDP push', () => sub.packets[0], 5000)
  await new Promise((r) => setTimeout(r, 500))
  t.equal(sub.packets.length, 1)
})

t.test('an unknown User-Agent gets no subscription; Client-Version counts only when User-Agent is empty', async (t) => {
  const { call } = await start(t, { push: { delayMs: 10 } })
  const sub = await subscriber(t)
  await call('GET', '/v1/ns/instance/list', { serviceName: 'orders', udpPort: String(sub.port) }, { headers: { 'user-agent': 'curl/8', 'client-version': 'Nacos-Java-Client:v2.4.0' } })
  await call('POST', '/v1/ns/instance', { serviceName: 'orders', ip: '127.0.0.1', port: '9001' })
  await new Promise((r) => setTimeout(r, 300))
  t.equal(sub.packets.length, 0)
  await call('GET', '/v1/ns/instance/list', { serviceName: 'orders', udpPort: String(sub.port) }, { headers: { 'user-agent': '', 'client-version': 'Nacos-Java-Client:v2.4.0' } })
  await waitFor('a UDP push', () => sub.packets[0], 5000)
  t.pass('pushed once Client-Version stood alone')
})

t.test('large packets are gzipped', async (t) => {
  const { call } = await start(t, { push: { delayMs: 10 } })
  for (let p = 9000; p < 9020; p++) await call('POST', '/v1/ns/instance', { serviceName: 'big', ip: '127.0.0.1', port: String(p) })
  const sub = await subscriber(t)
  await call('GET', '/v1/ns/instance/list', { serviceName: 'big', udpPort: String(sub.port) }, { headers: UA })
  const p = await waitFor('a UDP push', () => sub.packets[0], 5000)
  t.equal(p.gzipped, true)
  t.equal(p.data.hosts.length, 20)
})

t.test('a subscription lapses when its client stops listing', async (t) => {
  const { call } = await start(t, { push: { delayMs: 10, subscriberTtlMs: 200 } })
  const sub = await subscriber(t)
  await call('GET', '/v1/ns/instance/list', { serviceName: 'orders', udpPort: String(sub.port) }, { headers: UA })
  await waitFor('a UDP push', () => sub.packets[0], 5000)
  await new Promise((r) => setTimeout(r, 300))
  await call('POST', '/v1/ns/instance', { serviceName: 'orders', ip: '127.0.0.1', port: '9001' })
  await new Promise((r) => setTimeout(r, 200))
  t.equal(sub.packets.length, 1)
})
