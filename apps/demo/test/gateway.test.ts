// The gateway as a proxy (@fastify/reply-from over the lane-aware dispatcher): what it answers
// when order-service is missing, unreachable or answers something that is not JSON, and which
// of an upstream's headers reach the client. Real processes on loopback: the Nacos dev server,
// the gateway, and stand-in order-service instances registered by the test.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import t from 'tap'
import { waitFor } from '@flowtag/test-kit'
import { startApp, type AppProcess } from '../src/cluster.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from '../src/rulesets.ts'

// The embedded dev server, or a real Nacos when NACOS_SERVER_ADDR names one (as e2e.test.ts).
const real = process.env.NACOS_SERVER_ADDR
const dev = real === undefined || real === '' ? await startNacosDevServer({ port: 0 }) : undefined
const nacosAddr = dev?.address ?? real!
const namespace = `gateway-${Date.now().toString(36)}`
const client = new NacosClient({ serverAddr: nacosAddr, namespace })
const servers: Server[] = []
const apps: AppProcess[] = []
t.teardown(async () => {
  await Promise.all(apps.map((a) => a.stop('SIGKILL')))
  await client.close()
  for (const s of servers) s.close()
  await dev?.close()
})

await client.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(canaryRuleSet(3, 0)), 'json')
const gateway = await startApp('gateway', 'v1', { nacosAddr, env: { NACOS_NAMESPACE: namespace } })
apps.push(gateway)

/** A stand-in order-service instance answering with `answer`. */
async function standIn (answer: (res: import('node:http').ServerResponse) => void): Promise<number> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => answer(res))
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

async function get (headers: Record<string, string> = {}) {
  const res = await fetch(`${gateway.url}/api/orders/7`, { headers })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) as { error?: string; message?: string; hops: Array<Record<string, unknown>>; order?: unknown } }
}

const instances = async () => {
  const res = await fetch(`http://${nacosAddr}/nacos/v1/ns/instance/list?serviceName=order-service&namespaceId=${namespace}`)
  return ((await res.json()) as { hosts: Array<{ port: number }> }).hosts
}
const only = async (port: number) => {
  for (const h of await instances()) if (h.port !== port) await client.naming.deregister('order-service', { ip: '127.0.0.1', port: h.port })
  // The gateway hears of the change by push: each test waits until it answers from this instance.
  await client.naming.register('order-service', { ip: '127.0.0.1', port, metadata: { version: 'v1' } })
}

t.test('no order-service registered: 503 with the routing code, the gateway hop first', async (t) => {
  const res = await get({ 'x-user-id': 'u-1' })
  t.equal(res.status, 503)
  t.equal(res.body.error, 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE')
  t.match(res.body.hops, [{ service: 'gateway', version: 'v1', lane: 'v1', ruleVersion: 3 }])
  t.equal(res.body.hops.length, 1)
})

t.test('an order-service answer is proxied with the gateway hop first; the query carries the user; upstream receipts stay hidden', async (t) => {
  let seen = ''
  const port = await standIn((res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'x-flowtag-fallback': 'user-service:v2>v1(no-instance)', 'x-upstream': 'yes' })
    res.end(JSON.stringify({ order: 7, hops: [{ service: 'order-service', version: 'v1', lane: 'v1' }] }))
  })
  const server = servers.at(-1)!
  server.prependListener('request', (req) => {
    seen = req.url ?? ''
  })
  await only(port)
  const res = await waitFor('the stand-in answering through the gateway', async () => {
    const r = await get({ 'x-user-id': 'u 2' })
    return r.status === 201 ? r : undefined
  }, 15_000)
  t.same(res.body.hops.map((h) => h.service), ['gateway', 'order-service'])
  t.equal(res.body.order, 7)
  t.equal(seen, '/orders/7?user=u%202')
  t.equal(res.headers.get('content-length'), String(Buffer.byteLength(res.text)), 'the length of the rewritten body')
  t.equal(res.headers.get('x-upstream'), 'yes', 'other upstream headers pass')
  t.equal(res.headers.get('x-flowtag-fallback'), null, 'without FLOWTAG_DEBUG the edge shows no receipt')
})

t.test('an answer that is not JSON: its status, FLOWTAG_DEMO_BAD_UPSTREAM', async (t) => {
  const port = await standIn((res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('boom'))
  await only(port)
  const res = await waitFor('the non-JSON stand-in', async () => {
    const r = await get()
    return r.body.error === 'FLOWTAG_DEMO_BAD_UPSTREAM' ? r : undefined
  }, 15_000)
  t.equal(res.status, 500)
  t.match(res.body.hops, [{ service: 'gateway' }])
})

t.test('a 503 answer of order-service is passed on once, not retried by the proxy', async (t) => {
  let hits = 0
  const port = await standIn((res) => {
    hits++
    res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE', hops: [{ service: 'order-service', version: 'v1', lane: 'v1' }] }))
  })
  await only(port)
  const res = await waitFor('the 503 stand-in', async () => {
    const r = await get()
    return r.status === 503 && r.body.hops.length === 2 ? r : undefined
  }, 15_000)
  t.equal(res.body.error, 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE')
  t.equal(hits, 1, 'one request reached the instance')
})

t.test('an instance that refuses connections: 502 FLOWTAG_DEMO_UPSTREAM', async (t) => {
  const port = await standIn(() => {})
  await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()))
  await only(port)
  const res = await waitFor('the refused instance', async () => {
    const r = await get()
    return r.status === 502 ? r : undefined
  }, 15_000)
  t.equal(res.body.error, 'FLOWTAG_DEMO_UPSTREAM')
  t.match(res.body.message, /ECONNREFUSED|connect/)
  t.match(res.body.hops, [{ service: 'gateway' }])
})
