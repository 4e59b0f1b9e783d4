// The gateway as a proxy (@fastify/reply-from over the lane-aware dispatcher): what it answers
// when order-service is missing, unreachable or answers something that is not JSON, and which
// of an upstream's headers reach the client. Real processes on loopback: the Nacos dev server,
// the gateway, and stand-in order-service instances registered by the test.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
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

/** One raw HTTP/1.1 exchange with the gateway: the answer's head, and whether the gateway then closed the connection. */
async function raw (request: string): Promise<{ status: number, headers: Record<string, string>, closed: boolean }> {
  const socket = connect(gateway.port, '127.0.0.1')
  let data = ''
  let ended = false
  socket.on('data', (c: Buffer) => { data += c.toString('latin1') })
  socket.on('close', () => { ended = true })
  socket.on('error', () => {})
  socket.write(request)
  const head = await waitFor('the gateway\'s answer', () => {
    const end = data.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const lines = data.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
    const length = Number(headers['content-length'] ?? NaN)
    if (Number.isFinite(length) && data.length < end + 4 + length) return undefined
    return { status: Number(lines[0]!.split(' ')[1]), headers }
  }, 15_000)
  const closed = await waitFor('the gateway to close the connection', () => ended, 10_000).then(() => true, () => false)
  socket.destroy()
  return { ...head, closed }
}

t.test('Connection: close is honoured; hop-by-hop headers cross the gateway in neither direction', async (t) => {
  let seen: IncomingHttpHeaders = {}
  const port = await standIn((res) => {
    res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=61, max=7', 'proxy-connection': 'keep-alive', 'x-upstream': 'yes' })
    res.end(JSON.stringify({ order: 7, hops: [{ service: 'order-service', version: 'v1', lane: 'v1' }] }))
  })
  servers.at(-1)!.prependListener('request', (req) => {
    seen = req.headers
  })
  await only(port)
  await waitFor('the stand-in answering through the gateway', async () => (await get()).status === 200, 15_000)
  const res = await raw('GET /api/orders/7 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')
  t.equal(res.status, 200)
  t.equal(res.headers.connection, 'close', 'the answer says close')
  t.equal(res.headers['keep-alive'], undefined, 'no keep-alive of order-service')
  t.equal(res.headers['x-hop'], undefined, 'no header order-service\'s Connection names')
  t.equal(res.headers['proxy-connection'], undefined)
  t.equal(res.headers['x-upstream'], 'yes', 'end-to-end headers pass')
  t.ok(res.closed, 'the gateway closed the connection after the answer')

  seen = {}
  const hop = await raw('GET /api/orders/7 HTTP/1.1\r\nHost: gw\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\n\r\n')
  t.equal(hop.status, 200, 'a client\'s hop-by-hop headers are no reason to fail')
  t.equal(seen.host, 'order-service', 'the request reached order-service')
  for (const name of ['x-secret', 'keep-alive', 'proxy-connection', 'upgrade']) t.equal(seen[name], undefined, `the client's ${name} did not reach order-service`)
  t.notMatch(String(seen.connection), /close|x-secret/i, 'the gateway\'s connection to order-service is its own')
})
