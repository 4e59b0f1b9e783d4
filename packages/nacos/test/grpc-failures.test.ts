// Which gRPC failures are the connection's and which are one request's (grpc-connection.ts): a
// scripted server answers health checks but fails chosen requests (no answer before the
// deadline, an unreadable answer, an error status, a message too large), then stops answering.
import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { GrpcConnection } from '../src/grpc-connection.ts'
import { biStreamPath, decodePayload, encodePayload, requestPath, type WireMessage } from '../src/grpc-wire.ts'

const id = (b: Buffer): Buffer => b
const method = (path: string, stream: boolean) => ({ path, requestStream: stream, responseStream: stream, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id })
const ok = (type: string, body: Record<string, unknown> = {}): Buffer => encodePayload({ type, headers: {}, body: { resultCode: 200, errorCode: 0, success: true, ...body } })

/**
 * A Nacos-like gRPC port whose answers the test scripts; `hung` stops every answer, health checks
 * included; `lateHealth` health checks from now are answered `lateMs` late (a loaded machine),
 * `deafHealth` stops answering health checks alone; `pushEveryMs` pushes on the stream meanwhile.
 */
async function scriptedServer (t: { teardown(fn: () => unknown): void }) {
  const state = { hung: false, lateHealth: 0, lateMs: 0, deafHealth: false, pushEveryMs: 0 }
  const timers: NodeJS.Timeout[] = []
  const health = (answer: () => void): void => {
    if (state.deafHealth) return
    if (state.lateHealth === 0) return answer()
    state.lateHealth--
    timers.push(setTimeout(answer, state.lateMs))
  }
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 1024 * 1024 })
  server.addService({ request: method(requestPath, false), requestBiStream: method(biStreamPath, true) }, {
    request: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      if (state.hung) return
      const msg: WireMessage = decodePayload(call.request)
      if (msg.type === 'ServerCheckRequest') cb(null, ok('ServerCheckResponse', { connectionId: 'c1' }))
      else if (msg.type === 'HealthCheckRequest') health(() => cb(null, ok('HealthCheckResponse')))
      else if (msg.type === 'Slow') setTimeout(() => cb(null, ok('SlowResponse')), 3000)
      else if (msg.type === 'Garbage') cb(null, Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]))
      else if (msg.type === 'Broken') cb({ code: grpc.status.INTERNAL, details: 'handler broke' })
      else cb(null, ok(msg.type.replace(/Request$/, 'Response'), { echo: msg.body.n }))
    },
    requestBiStream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', () => {})
      call.on('error', () => {})
      let pushes = 0
      const pusher = setInterval(() => {
        if (state.pushEveryMs > 0 && !state.hung) call.write(encodePayload({ type: 'NotifySubscriberRequest', headers: {}, body: { requestId: String(++pushes), serviceInfo: {} } }))
      }, 50)
      timers.push(pusher)
    }
  })
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))))
  t.teardown(() => {
    for (const timer of timers) clearTimeout(timer)
    server.forceShutdown()
  })
  return { port, state }
}

async function open (t: { teardown(fn: () => unknown): void }, grpcPort: number, closes: string[]): Promise<GrpcConnection> {
  const silent = { debug () {}, info () {}, warn () {}, error () {} }
  const conn = new GrpcConnection({ host: '127.0.0.1', port: grpcPort - 1000, module: 'config', namespace: '', timeoutMs: 1000, logger: silent, handlers: {}, onClose: (why) => closes.push(why) })
  t.teardown(() => conn.close())
  await conn.open()
  return conn
}

t.test('a request of its own failing on a healthy connection fails that request alone', async (t) => {
  const { port } = await scriptedServer(t)
  const closes: string[] = []
  const conn = await open(t, port, closes)
  t.ok(conn.upSince > 0 && conn.upSince <= Date.now(), 'up since its server check')
  await t.rejects(conn.request('Slow', {}, {}), { code: 'FLOWTAG_NACOS_REQUEST_FAILED', message: /^Slow to 127\.0\.0\.1:\d+: .*Deadline exceeded.*the connection is healthy/ }, 'no answer before the deadline')
  await t.rejects(conn.request('Garbage', {}, {}), { code: 'FLOWTAG_NACOS_REQUEST_FAILED', message: /unreadable answer \(6 bytes\)/ }, 'an answer that is not a Payload')
  await t.rejects(conn.request('Broken', {}, {}), { code: 'FLOWTAG_NACOS_REQUEST_FAILED', message: /handler broke/ }, 'an error status')
  await t.rejects(conn.request('Big', { pad: 'x'.repeat(2 * 1024 * 1024) }, {}), { code: 'FLOWTAG_NACOS_TOO_LARGE', bytes: Number, limitBytes: 1024 * 1024 }, "over the server's limit: sizes from its status")
  t.same(closes, [], 'the connection was never closed')
  t.notOk(conn.closed)
  t.match(await conn.request('EchoRequest', { n: 7 }, {}), { type: 'EchoResponse', body: { echo: 7 } }, 'and serves the next request')
})

t.test('a request failing on a connection that no longer answers its health check is the connection\'s', async (t) => {
  const { port, state } = await scriptedServer(t)
  const closes: string[] = []
  const conn = await open(t, port, closes)
  state.hung = true
  await t.rejects(conn.request('EchoRequest', { n: 1 }, {}), { code: 'FLOWTAG_NACOS_UNREACHABLE', message: /Deadline exceeded/ })
  t.ok(conn.closed, 'closed')
  t.match(closes, [/^health check failed \(.*\) after EchoRequest failed/], 'once, saying why')
  await t.rejects(conn.request('EchoRequest', { n: 2 }, {}), { code: 'FLOWTAG_NACOS_UNREACHABLE' }, 'a closed connection fails fast')
})

t.test('a health check answered late once is a slow connection, not a dead one', async (t) => {
  // A loaded machine answers one check after its deadline: the connection (its subscriptions, the
  // pushes in flight) is kept; Nacos's Java client also asks again before it switches.
  const { port, state } = await scriptedServer(t)
  const closes: string[] = []
  const conn = await open(t, port, closes)
  state.lateHealth = 1
  state.lateMs = 1600
  await t.rejects(conn.request('Slow', {}, {}), { code: 'FLOWTAG_NACOS_REQUEST_FAILED', message: /the connection is healthy/ }, 'the request alone failed')
  t.same(closes, [], 'the connection was not closed')
  t.notOk(conn.closed)
  t.match(await conn.request('EchoRequest', { n: 3 }, {}), { type: 'EchoResponse', body: { echo: 3 } }, 'and serves the next request')
})

t.test('pushes arriving while health checks go unanswered show a live connection', async (t) => {
  const { port, state } = await scriptedServer(t)
  const closes: string[] = []
  const conn = await open(t, port, closes)
  state.deafHealth = true
  state.pushEveryMs = 50
  await t.rejects(conn.request('Slow', {}, {}), { code: 'FLOWTAG_NACOS_REQUEST_FAILED', message: /the connection is healthy/ })
  t.same(closes, [], 'the connection was not closed')
  t.notOk(conn.closed)
})

t.test('health checks unanswered several times in a row, with nothing else arriving, close the connection', async (t) => {
  const { port, state } = await scriptedServer(t)
  const closes: string[] = []
  const conn = await open(t, port, closes)
  state.deafHealth = true
  await t.rejects(conn.request('Slow', {}, {}), { code: 'FLOWTAG_NACOS_UNREACHABLE' })
  t.ok(conn.closed, 'closed')
  t.match(closes, [/^health check failed \(.*\(4 of 4 attempts\)\) after Slow failed/], 'after every attempt, saying so')
})
