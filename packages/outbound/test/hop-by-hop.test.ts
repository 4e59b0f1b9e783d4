// Hop-by-hop headers (RFC 9110 §7.6.1) stay on their hop, whichever way a request comes in:
// a reply-from gateway over the dispatcher (undici 8's request(), and undici 7's through
// dispatcherOf()), undici's fetch and request(), and Node's global fetch. Real servers on
// loopback: the upstream is registered in discovery; clients speak raw HTTP/1.1 where the bytes
// matter (Expect, Connection: close).
import { request as httpRequest } from 'node:http'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'
import { Dispatcher as Dispatcher7 } from 'undici7'
import { fetch, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { dispatcherOf, FlowTagDispatcher, installGlobalDispatcher } from '../src/index.ts'
import { startRecorder, type Recorder } from './fixtures/recorder.ts'
import { exchange, open } from './fixtures/raw-http.ts'

const FORMS = ['undici 8 request()', 'undici 7 request() (dispatcherOf)'] as const
type Form = typeof FORMS[number]

/** Hop-by-hop names that must never reach the other side (besides those a Connection header names). */
const HOP = ['keep-alive', 'proxy-connection', 'upgrade', 'transfer-encoding', 'expect', 'x-secret', 'x-hop']

async function setup (t: Test): Promise<{ up: Recorder, dispatcher: FlowTagDispatcher }> {
  const up = await startRecorder(t)
  const dispatcher = new FlowTagDispatcher({ discovery: new StaticDiscovery({ 'up-service': [{ ip: '127.0.0.1', port: up.port }] }) })
  t.teardown(() => dispatcher.close())
  return { up, dispatcher }
}

/** A gateway like apps/gateway: @fastify/reply-from over the dispatcher, request bodies streamed as they come. */
async function gateway (t: Test, dispatcher: FlowTagDispatcher, form: Form): Promise<number> {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))
  await app.register(replyFrom, { base: 'http://up-service', undici: form === FORMS[0] ? dispatcher as never : dispatcherOf(Dispatcher7, dispatcher) })
  app.all('/*', (req, reply) => reply.from(req.url))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

/** A POST with Expect: 100-continue as Node's client (and curl) sends it: the body after the 100. */
function postExpecting (port: number, body: Buffer, contentType: string): Promise<{ status: number, continued: boolean, body: string }> {
  return new Promise((resolve, reject) => {
    let continued = false
    const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/orders', headers: { expect: '100-continue', 'content-type': contentType, 'content-length': body.length } })
    req.on('continue', () => {
      continued = true
      req.end(body)
    })
    req.on('response', (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += String(c) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, continued, body: text }))
    })
    req.on('error', reject)
  })
}

for (const form of FORMS) {
  t.test(`${form}: a 4 KB POST with Expect: 100-continue through a reply-from gateway gets 201`, async (t) => {
    const { up, dispatcher } = await setup(t)
    const port = await gateway(t, dispatcher, form)
    const json = Buffer.from(JSON.stringify({ pad: 'x'.repeat(4096) }))
    const parsed = await postExpecting(port, json, 'application/json')
    t.same(parsed, { status: 201, continued: true, body: JSON.stringify({ bytes: json.length }) }, 'a JSON body (parsed by the gateway)')
    const bytes = Buffer.alloc(4096, 1)
    const streamed = await postExpecting(port, bytes, 'application/octet-stream')
    t.same(streamed, { status: 201, continued: true, body: JSON.stringify({ bytes: 4096 }) }, 'a streamed body')
    t.equal(up.seen.length, 2)
    for (const s of up.seen) t.equal(s.headers.expect, undefined, 'the expectation was the gateway\'s to answer: not sent on')
  })

  t.test(`${form}: a client's hop-by-hop headers do not reach the upstream`, async (t) => {
    const { up, dispatcher } = await setup(t)
    const port = await gateway(t, dispatcher, form)
    const answer = await exchange(await open(port), [
      'GET /x HTTP/1.1', 'Host: gw', 'Connection: keep-alive, X-Secret', 'X-Secret: 1', 'Keep-Alive: timeout=5',
      'Proxy-Connection: keep-alive', 'TE: trailers, deflate', 'Upgrade: h2c', 'X-End: kept', '', ''
    ].join('\r\n'))
    answer.socket.destroy()
    t.equal(answer.status, 200, answer.body)
    const seen = up.seen[0]!.headers
    for (const name of HOP) t.equal(seen[name], undefined, `${name} not sent on`)
    t.notMatch(String(seen.connection), /x-secret|h2c/i, 'Connection is the gateway\'s own')
    t.equal(seen.te, 'trailers', 'TE: only trailers is sent on')
    t.equal(seen['x-end'], 'kept', 'end-to-end headers pass')
  })

  t.test(`${form}: Connection: close is honoured and the upstream's hop-by-hop headers stay behind`, async (t) => {
    const { dispatcher } = await setup(t)
    const port = await gateway(t, dispatcher, form)
    const closing = await exchange(await open(port), 'GET /x?hop=1 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')
    t.equal(closing.status, 200)
    t.equal(closing.headers.connection, 'close', 'the answer says close')
    // transfer-encoding may be the gateway's own framing of the body it sends; the others never are.
    for (const name of HOP.filter((n) => n !== 'transfer-encoding')) t.equal(closing.headers[name], undefined, `no ${name} in the answer`)
    t.equal(closing.headers['x-end'], 'kept', 'end-to-end headers of the upstream pass')
    t.ok(await closing.closedWithin(10_000), 'the gateway closed the connection after the answer')

    // A keep-alive client keeps its connection, with the gateway's own keep-alive, not the upstream's.
    const socket = await open(port)
    t.teardown(() => socket.destroy())
    const first = await exchange(socket, 'GET /x?hop=1 HTTP/1.1\r\nHost: gw\r\n\r\n')
    t.equal(first.headers.connection, 'keep-alive')
    t.not(first.headers['keep-alive'], 'timeout=61, max=7', 'the keep-alive header is the gateway\'s')
    t.equal(first.headers['x-hop'], undefined)
    socket.removeAllListeners('data')
    const second = await exchange(socket, 'GET /x HTTP/1.1\r\nHost: gw\r\n\r\n')
    t.equal(second.status, 200, 'the same connection serves a second request')
  })
}

t.test('undici fetch() and request() over the dispatcher: hop-by-hop request headers are dropped, Expect answered', async (t) => {
  const { up, dispatcher } = await setup(t)
  const body = Buffer.alloc(4096, 2)
  const res = await fetch('http://up-service/orders', { dispatcher, method: 'POST', headers: { expect: '100-continue', 'content-type': 'application/octet-stream' }, body })
  t.equal(res.status, 201)
  t.same(await res.json(), { bytes: 4096 })
  t.equal(res.headers.get('connection'), null, 'no hop-by-hop header in the answer')
  t.equal(res.headers.get('keep-alive'), null)

  const hop = await request('http://up-service/x?hop=1', {
    dispatcher,
    headers: {
      Connection: 'close, X-Secret',
      'X-Secret': '1',
      'Keep-Alive': 'timeout=5',
      'Proxy-Connection': 'keep-alive',
      'Transfer-Encoding': 'chunked',
      TE: 'trailers',
      Upgrade: 'h2c',
      Expect: '100-Continue'
    }
  })
  t.equal(hop.statusCode, 200)
  const seen = ((await hop.body.json()) as { headers: Record<string, string> }).headers
  for (const name of HOP) t.equal(seen[name], undefined, `${name} not sent on`)
  t.equal(seen.connection, 'keep-alive', 'the dispatcher keeps its own connection: a caller\'s close is not sent on')
  t.equal(seen.te, 'trailers')
  for (const name of ['connection', ...HOP]) t.equal(hop.headers[name], undefined, `no ${name} in the answer`)
  t.equal(hop.headers['x-end'], 'kept')
  t.equal(up.seen.length, 2)
})

t.test("Node's global fetch through installGlobalDispatcher(): Expect: 100-continue gets 201", async (t) => {
  const { up, dispatcher } = await setup(t)
  const original = getGlobalDispatcher()
  const legacy = Symbol.for('undici.globalDispatcher.1')
  const originalLegacy = (globalThis as Record<symbol, unknown>)[legacy]
  t.teardown(() => {
    setGlobalDispatcher(original)
    ;(globalThis as Record<symbol, unknown>)[legacy] = originalLegacy
  })
  installGlobalDispatcher(dispatcher, { services: ['up-service'] })
  const res = await globalThis.fetch('http://up-service/orders?hop=1', { method: 'POST', headers: { expect: '100-continue', 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'y'.repeat(4096) }) })
  t.equal(res.status, 201)
  await res.arrayBuffer()
  t.equal(up.seen[0]!.headers.expect, undefined)
  t.equal(res.headers.get('x-hop'), null, 'a header the upstream\'s Connection names stays behind')
  t.equal(res.headers.get('keep-alive'), null)
})
