// Idempotent unary methods: a reply is held until its status, so an instance whose connection is
// lost between the two (a crash after the reply was written) costs a retry, not a failed call.
// Methods not listed keep gRPC's rule: a call that had its answer is committed and not retried.
import { once } from 'node:events'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { credentials, status, type MethodDefinition } from '@grpc/grpc-js'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagGrpc } from '../src/index.ts'
import { EchoClient, EchoService, echo, startEcho } from './fixtures/echo.ts'

const quiet = { warn: () => {}, info: () => {} }

/**
 * An HTTP/2 server that answers every gRPC call with its headers and a whole reply message, then
 * loses the connection before the status (trailers): what a process killed between the two does.
 */
async function dropper (t: Test): Promise<{ port: number; calls: number }> {
  const state = { port: 0, calls: 0 }
  const server = http2.createServer()
  server.on('stream', (stream) => {
    state.calls++
    stream.respond({ ':status': 200, 'content-type': 'application/grpc+json' })
    const body = Buffer.from(JSON.stringify({ id: 'dropper', tag: 'v2', baggage: {} }))
    const frame = Buffer.alloc(5 + body.length)
    frame.writeUInt32BE(body.length, 1)
    body.copy(frame, 5)
    stream.write(frame)
    setTimeout(() => stream.session?.socket.destroy(), 30)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  state.port = (server.address() as AddressInfo).port
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sessions) s.destroy()
    server.close(() => resolve())
  }))
  const sessions = new Set<http2.ServerHttp2Session>()
  server.on('session', (s) => {
    sessions.add(s)
    s.on('close', () => sessions.delete(s))
  })
  return state
}

async function lane (t: Test, idempotentMethods: Array<MethodDefinition<object, object>>) {
  const drop = await dropper(t)
  const good = await startEcho('good')
  t.teardown(() => good.close())
  // The dropper weighs 100 to 1: nearly every call meets it first. No ejection: it stays in play.
  const discovery = new StaticDiscovery({
    echo: [
      { ip: '127.0.0.1', port: drop.port, metadata: { version: 'v2' }, weight: 100 },
      { ip: '127.0.0.1', port: good.port, metadata: { version: 'v2' }, weight: 1 }
    ]
  })
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', idempotentMethods, outlier: { maxEjectionPercent: 0 }, logger: quiet })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  return { drop, good, client }
}

const inV2 = <T> (fn: () => Promise<T>) => runWithFlow({ tag: 'v2', baggage: {} }, fn)

t.test('an idempotent method whose reply lost its status is retried on another instance of the lane', async (t) => {
  const { drop, good, client } = await lane(t, [EchoService.echo!])
  for (let i = 0; i < 8; i++) {
    t.match(await inV2(() => echo(client)), { id: 'good', tag: 'v2' }, 'the held reply of the lost attempt never reaches the caller')
  }
  t.ok(drop.calls >= 4, `the dropper answered calls first (${drop.calls} of 8)`)
  t.equal(good.calls, 8, 'each call ran again on the good instance')
})

t.test('a method not listed keeps gRPC\'s rule: answered, then lost, the call fails', async (t) => {
  const { drop, good, client } = await lane(t, [])
  let failed = 0
  for (let i = 0; i < 8; i++) {
    const r = await inV2(() => echo(client)).catch((e: unknown) => e as { code: number })
    if ('code' in r) {
      failed++
      t.equal(r.code, status.UNAVAILABLE)
    }
  }
  t.ok(drop.calls >= 4, `the dropper answered calls first (${drop.calls} of 8)`)
  t.equal(failed, drop.calls, 'every call the dropper answered failed: no retry after an answer')
  t.equal(good.calls, 8 - failed)
})

t.test('idempotentMethods takes unary method definitions only, naming the bad one', async (t) => {
  const discovery = new StaticDiscovery({})
  const streaming = { ...EchoService.echo!, responseStream: true }
  t.throws(() => new FlowTagGrpc({ discovery, idempotentMethods: [streaming as never] }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"idempotentMethods\.0\.responseStream".*streams responses/ })
  t.throws(() => new FlowTagGrpc({ discovery, idempotentMethods: ['/test.Echo/Echo' as never] }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"idempotentMethods\.0"/ })
  // A misspelt method name reads undefined from the definition.
  t.throws(() => new FlowTagGrpc({ discovery, idempotentMethods: [EchoService.Echo as never] }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"idempotentMethods\.0": expected a method definition \(Client\.service\.Method\), got undefined/ })
  t.throws(() => new FlowTagGrpc({ discovery, idempotentMethods: [{ ...EchoService.echo!, path: 'Echo' }] }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"idempotentMethods\.0\.path"/ })
  const ok = new FlowTagGrpc({ discovery, idempotentMethods: [EchoService.echo!] })
  t.same(ok.options.idempotentMethods.map((m) => m.path), ['/test.Echo/Echo'])
  ok.close()
})
