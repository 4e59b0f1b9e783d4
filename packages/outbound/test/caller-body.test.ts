// A request body that fails on the caller's side — an upload whose client went away, a stream
// that errors, an iterable that throws, a body short of its length — is the caller's failure:
// the instance is not ejected for it and the request is not retried. An instance that fails
// while reading a body still counts against it. Real servers on loopback; the gateway is
// @fastify/reply-from over the dispatcher, streaming request bodies as they come.
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'
import { Dispatcher as Dispatcher7 } from 'undici7'
import { fetch, request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import { dispatcherOf, FlowTagDispatcher, type OutboundOptions } from '../src/index.ts'
import { startRecorder, type Recorder } from './fixtures/recorder.ts'
import { exchange, open } from './fixtures/raw-http.ts'

async function setup (t: Test, options: Partial<OutboundOptions> = {}): Promise<{ up: Recorder, dispatcher: FlowTagDispatcher }> {
  const up = await startRecorder(t)
  const dispatcher = new FlowTagDispatcher({ discovery: new StaticDiscovery({ 'up-service': [{ ip: '127.0.0.1', port: up.port }] }), ...options })
  t.teardown(() => dispatcher.close())
  return { up, dispatcher }
}

/** An error as a socket (or an IncomingMessage whose client left) raises it. */
const reset = () => Object.assign(new Error('aborted'), { code: 'ECONNRESET' })

t.test('clients that abandon their uploads through a reply-from gateway do not eject the instance', async (t) => {
  // The default policy: five consecutive failures eject.
  const { up, dispatcher } = await setup(t)
  for (const via7 of [false, true]) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))
    await app.register(replyFrom, { base: 'http://up-service', undici: via7 ? dispatcherOf(Dispatcher7, dispatcher) : dispatcher as never })
    app.all('/*', (req, reply) => reply.from(req.url))
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as { port: number }).port

    for (let i = 0; i < 5; i++) {
      const before = up.seen.length
      const client = await open(port)
      client.on('error', () => {})
      client.write('POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n')
      client.write(Buffer.alloc(64 * 1024, 7))
      // Mid-upload: the instance has part of the body when the client goes away.
      const seen = await waitFor('the upload to reach the instance', () => up.seen.length > before && up.seen[before]!.bytes > 0 ? up.seen[before] : undefined)
      client.destroy()
      await waitFor('the instance to see the upload cut off', () => seen.outcome === 'cut')
    }
    t.same(dispatcher.snapshot('up-service')?.ejected, [], `${via7 ? 'undici 7' : 'undici 8'} request(): the instance was not ejected`)
    const answer = await exchange(await open(port), 'GET /after HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')
    t.equal(answer.status, 200, 'the next plain GET is served')
    await app.close()
  }
})

t.test('a body stream or iterable that fails is the caller\'s: no ejection, no retry, its own error', async (t) => {
  // One failure would eject; two instances, so a retry would have somewhere to go.
  const other = await startRecorder(t)
  const { up, dispatcher } = await setup(t, { outlier: { consecutiveFailures: 1, maxEjectionPercent: 100 } })
  const both = new FlowTagDispatcher({
    discovery: new StaticDiscovery({ 'up-service': [{ ip: '127.0.0.1', port: up.port }, { ip: '127.0.0.1', port: other.port }] }),
    outlier: { consecutiveFailures: 1, maxEjectionPercent: 100 }
  })
  t.teardown(() => both.close())

  for (const d of [dispatcher, both]) {
    // A stream that errors after some bytes, as an IncomingMessage does when its client leaves.
    const streamErr = reset()
    const stream = new Readable({ read () {} })
    stream.push(Buffer.alloc(32 * 1024, 1))
    const sent = request('http://up-service/upload', { dispatcher: d, method: 'PUT', body: stream })
    await waitFor('part of the body to arrive', () => up.seen.concat(other.seen).some((s) => s.method === 'PUT' && s.bytes > 0 && s.outcome === undefined))
    stream.destroy(streamErr)
    await t.rejects(sent, streamErr, 'the stream\'s own error')

    // An async iterable that throws.
    const iterErr = reset()
    const iterable = (async function * () {
      yield Buffer.alloc(1024, 2)
      throw iterErr
    })()
    await t.rejects(request('http://up-service/upload', { dispatcher: d, method: 'POST', body: iterable as never }), iterErr, 'the iterable\'s own error')

    // fetch() with a stream that errors: fetch turns the body into an iterable of its own.
    const webErr = reset()
    const web = new ReadableStream({
      start (controller) {
        controller.enqueue(new Uint8Array(1024))
        setTimeout(() => controller.error(webErr), 50)
      }
    })
    await t.rejects(fetch('http://up-service/upload', { dispatcher: d, method: 'POST', body: web as never, duplex: 'half' }), { cause: webErr })

    // A body short of its declared length.
    await t.rejects(request('http://up-service/upload', { dispatcher: d, method: 'POST', headers: { 'content-length': '10' }, body: Readable.from([Buffer.from('short')]) }), { code: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' })

    t.same(d.snapshot('up-service')?.ejected, [], 'no instance ejected')
    const res = await request('http://up-service/after', { dispatcher: d })
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  t.equal(up.seen.concat(other.seen).filter((s) => s.method === 'PUT').length, 2, 'each failed stream was sent once: not retried')
})

t.test('an instance that drops the connection mid-upload still counts against it', async (t) => {
  const { up, dispatcher } = await setup(t, { outlier: { consecutiveFailures: 2, maxEjectionPercent: 100 } })
  for (let i = 0; i < 2; i++) {
    const body = new Readable({ read () {} })
    body.push(Buffer.alloc(64 * 1024, 3))
    const sent = request('http://up-service/upload', { dispatcher, method: 'POST', headers: { 'x-drop': '1' }, body })
    await t.rejects(sent, { code: /^(ECONNRESET|EPIPE|UND_ERR_SOCKET)$/ }, 'a connection-level failure of the instance')
    body.destroy()
  }
  t.same(dispatcher.snapshot('up-service')?.ejected, [`127.0.0.1:${up.port}`], 'ejected after two in a row')
})
