// A kept-alive connection the instance closes when the next request arrives on it: idempotent
// requests are sent once more on a fresh connection (to the same instance when it is the only one).
import { Readable } from 'node:stream'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { FlowTagDispatcher } from '../src/index.ts'
import { startStale } from './fixtures/stale.ts'

async function call (d: FlowTagDispatcher, method: string, body?: string | Readable): Promise<{ status?: number; code?: string; message?: string }> {
  try {
    // HEAD closes its connection unless told not to; the point here is a reused one.
    const res = await request('http://svc/x', { dispatcher: d, method: method as 'GET', body, reset: method === 'HEAD' ? false : undefined })
    await res.body.dump()
    return { status: res.statusCode }
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message }
  }
}

t.test('single-instance lane: three sequential GETs over a connection the instance drops all answer 200', async (t) => {
  const s = await startStale(t)
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: s.port }] }) })
  t.teardown(() => d.close())
  const results = []
  for (let i = 0; i < 3; i++) results.push(await call(d, 'GET'))
  t.same(results, [{ status: 200 }, { status: 200 }, { status: 200 }])
  t.ok(s.dropped >= 1, `the server did drop a reused connection (${s.dropped} times)`)
  t.equal(s.answered, 3)
  t.same(d.snapshot('svc')?.ejected, [], 'an aged connection does not count against the instance')
})

for (const method of ['HEAD', 'OPTIONS', 'PUT', 'DELETE']) {
  t.test(`${method} is sent again too (PUT with a string body)`, async (t) => {
    const s = await startStale(t)
    const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: s.port }] }) })
    t.teardown(() => d.close())
    const body = method === 'PUT' ? 'replayable' : undefined
    const results = []
    for (let i = 0; i < 3; i++) results.push(await call(d, method, body))
    t.same(results, [{ status: 200 }, { status: 200 }, { status: 200 }])
    t.equal(s.dropped, 1, 'one request met a dropped connection')
    t.equal(s.answered, 3)
  })
}

t.test('a POST on the dropped connection fails as before, and is not sent again', async (t) => {
  const s = await startStale(t)
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: s.port }] }) })
  t.teardown(() => d.close())
  // undici opens a second connection for the second request; the third reuses one.
  const results = []
  for (let i = 0; i < 3; i++) results.push(await call(d, 'POST', 'order'))
  t.same(results.slice(0, 2), [{ status: 200 }, { status: 200 }])
  t.match(results[2], { code: 'UND_ERR_SOCKET', message: 'other side closed' }, 'the third POST fails with the socket error')
  t.equal(s.answered, 2, 'the dropped POST was not answered by a second attempt')
  t.equal(s.dropped, 1)
  t.equal(s.connections, 2, 'no fresh connection was opened for it')
})

t.test('a stream body (consumed by the first attempt) is not sent again', async (t) => {
  const s = await startStale(t)
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: s.port }] }) })
  t.teardown(() => d.close())
  t.same(await call(d, 'PUT', 'first'), { status: 200 })
  t.same(await call(d, 'PUT', 'second'), { status: 200 })
  t.match(await call(d, 'PUT', Readable.from([Buffer.from('streamed')])), { code: 'UND_ERR_SOCKET' })
  t.equal(s.dropped, 1)
  t.equal(s.connections, 2, 'no fresh connection was opened for it')
})

t.test('with two such instances every GET still answers', async (t) => {
  const [a, b] = [await startStale(t), await startStale(t)]
  const d = new FlowTagDispatcher({
    discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: a.port }, { ip: '127.0.0.1', port: b.port }] })
  })
  t.teardown(() => d.close())
  const results = []
  for (let i = 0; i < 6; i++) results.push(await call(d, 'GET'))
  t.ok(results.every((r) => r.status === 200), JSON.stringify(results))
  t.equal(a.answered + b.answered, 6)
})

t.test('staleRetry: false leaves the failure to the caller', async (t) => {
  const s = await startStale(t)
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: s.port }] }), staleRetry: false })
  t.teardown(() => d.close())
  const results = []
  for (let i = 0; i < 3; i++) results.push(await call(d, 'GET'))
  t.match(results, [{ status: 200 }, { status: 200 }, { code: 'UND_ERR_SOCKET' }])
})

t.test('a fresh connection closed without an answer is not a stale one: no second attempt', async (t) => {
  let requests = 0
  const server = createServer((req) => {
    requests++
    req.socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port }] }) })
  t.teardown(() => d.close())
  t.match(await call(d, 'GET'), { code: 'UND_ERR_SOCKET' })
  t.equal(requests, 1, 'a request that kills its instance is not sent to it twice')
})

t.test('destroy() reaches a fresh-connection attempt in flight', async (t) => {
  const s = await startStale(t, true)
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: s.port }] }) })
  t.same(await call(d, 'GET'), { status: 200 })
  t.same(await call(d, 'GET'), { status: 200 })
  const third = call(d, 'GET')
  await new Promise((r) => setTimeout(r, 200))
  t.equal(s.dropped, 1, 'the third GET met the dropped connection and went out again')
  t.equal(s.connections, 3, 'on a connection of its own')
  await d.destroy(new Error('shutting down'))
  t.match(await third, { message: 'shutting down' }, 'the attempt in flight failed with the destroy reason')
})
