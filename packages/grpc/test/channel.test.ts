// The channel of clientOptions(): grpc-js's channel wrapped, so every call carries its caller's
// flow and retries below the interceptors. Its surface (the channel's own methods, a user's
// channelOverride or channelFactoryOverride, interceptors above it), and what is never retried:
// cancelled calls, calls that streamed more than one request message or had not half-closed.
import t, { type Test } from 'tap'
import { Channel, ChannelCredentials, CallCredentials, connectivityState, credentials, InterceptingCall, makeGenericClientConstructor, Metadata, status, type ClientOptions, type Interceptor, type ServiceDefinition } from '@grpc/grpc-js'
import { StaticDiscovery } from '@flowtag/nacos'
import { currentFlow, runWithFlow } from '@flowtag/context'
import { FlowTagGrpc } from '../src/index.ts'
import { FlowTagGrpcServer } from '../src/server-entry.ts'
import { EchoClient, echo, startEcho } from './fixtures/echo.ts'

const quiet = { warn: () => {}, info: () => {} }

async function lanesFor (t: Test, specs: Array<{ id: string; sick?: boolean; weight?: number }>) {
  const servers = await Promise.all(specs.map((s) => startEcho(s.id, {}, s.sick === true)))
  t.teardown(() => Promise.all(servers.map((s) => s.close())))
  const discovery = new StaticDiscovery({ echo: servers.map((s, i) => ({ ip: '127.0.0.1', port: s.port, metadata: { version: 'v1' }, weight: specs[i]!.weight ?? 1 })) })
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', outlier: { maxEjectionPercent: 0 }, logger: quiet })
  t.teardown(() => lanes.close())
  return { servers, lanes }
}

t.test('the wrapped channel answers for grpc-js\'s channel', async (t) => {
  const { lanes } = await lanesFor(t, [{ id: 'a1' }])
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => client.close())
  const channel = client.getChannel()
  t.equal(channel.getTarget(), 'nacos:///echo')
  t.ok(channel.getChannelzRef().id > 0, 'channelz ref of the inner channel')
  t.equal(channel.getConnectivityState(false), connectivityState.IDLE)
  await new Promise<void>((resolve, reject) => channel.watchConnectivityState(channel.getConnectivityState(true), Date.now() + 10_000, (err) => (err === undefined ? resolve() : reject(err))))
  t.not(channel.getConnectivityState(false), connectivityState.IDLE, 'connecting on request')
  t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client)), { id: 'a1', tag: 'v2' })
  t.type(channel.createCall('/test.Echo/Echo', Infinity, undefined, null, undefined).getCallNumber(), 'number', 'a call has the number of its attempt')
})

t.test('a channelOverride or channelFactoryOverride of the caller is wrapped; interceptors run above the channel', async (t) => {
  const { lanes } = await lanesFor(t, [{ id: 'a1' }])
  const { channelFactoryOverride: _, ...channelOptions } = lanes.clientOptions()
  const own = new Channel('nacos:///echo', credentials.createInsecure(), channelOptions)
  const overridden = new EchoClient('ignored:///target', credentials.createInsecure(), lanes.clientOptions({ channelOverride: own }))
  t.teardown(() => overridden.close())
  t.match(await runWithFlow({ tag: 'v3', baggage: {} }, () => echo(overridden)), { id: 'a1', tag: 'v3' }, 'the override carries the flow')

  const made: string[] = []
  const factory: ClientOptions['channelFactoryOverride'] = (target, creds, options) => {
    made.push(target)
    return new Channel(target, creds, options)
  }
  const seen: Array<string | undefined> = []
  const spy: Interceptor = (options, nextCall) => new InterceptingCall(nextCall(options), {
    start (md, listener, next) {
      seen.push(currentFlow()?.tag)
      next(md, listener)
    }
  })
  const factored = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions({ channelFactoryOverride: factory, interceptors: [spy] }))
  t.teardown(() => factored.close())
  t.match(await runWithFlow({ tag: 'v4', baggage: {} }, () => echo(factored)), { id: 'a1', tag: 'v4' })
  t.same(made, ['nacos:///echo'], 'the caller\'s factory made the inner channel')
  t.same(seen, ['v4'], 'the caller\'s interceptor ran, in the flow')
})

t.test('per-call credentials and deadlines reach the retry', async (t) => {
  const { servers, lanes } = await lanesFor(t, [{ id: 'sick', sick: true, weight: 1000 }, { id: 'good' }])
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => client.close())
  let generated = 0
  const creds = CallCredentials.createFromMetadataGenerator((_params, cb) => {
    generated++
    const md = new Metadata()
    md.set('x-token', 't1')
    cb(null, md)
  })
  const reply = await new Promise<{ id: string }>((resolve, reject) => {
    (client as unknown as { echo(req: object, md: Metadata, opts: object, cb: (err: Error | null, r: { id: string }) => void): void })
      .echo({}, new Metadata(), { credentials: creds, deadline: Date.now() + 10_000 }, (err, r) => (err === null ? resolve(r) : reject(err)))
  })
  t.equal(reply.id, 'good')
  t.ok(servers[0]!.calls <= 1, 'the sick instance was tried at most once')
  t.equal(generated, servers[0]!.calls + 1, 'credentials on every attempt')
})

t.test('a cancelled call ends CANCELLED', async (t) => {
  const { lanes } = await lanesFor(t, [{ id: 'a1' }])
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => client.close())
  const err = await new Promise((resolve) => {
    const call = (client as unknown as { echo(req: object, cb: (err: Error | null) => void): { cancel(): void; getPeer(): string; getAuthContext(): unknown } }).echo({}, (e) => resolve(e))
    t.type(call.getPeer(), 'string')
    t.equal(call.getAuthContext(), null, 'no auth context before a connection')
    call.cancel()
  })
  t.match(err, { code: status.CANCELLED })
})

t.test('streamed requests are retried only when the whole request is known', async (t) => {
  const json = { s: (v: unknown) => Buffer.from(JSON.stringify(v)), d: (b: Buffer) => JSON.parse(b.toString()) as unknown }
  const Collect: ServiceDefinition = {
    collect: { path: '/test.Collect/Collect', requestStream: true, responseStream: false, requestSerialize: json.s, requestDeserialize: json.d, responseSerialize: json.s, responseDeserialize: json.d }
  }
  const CollectClient = makeGenericClientConstructor(Collect, 'Collect')
  const start = async (id: string, sick: boolean) => {
    const app = Object.assign(new FlowTagGrpcServer({ shutdownTimeoutMs: 500 }), { calls: 0 })
    app.addService(Collect, {
      collect: (call: NodeJS.EventEmitter, cb: (err: { code: number; details: string } | null, r?: object) => void) => {
        app.calls++
        let n = 0
        let done = false
        const fail = () => {
          if (!done) cb({ code: status.UNAVAILABLE, details: `${id} is going away` })
          done = true
        }
        call.on('data', (m: { early?: boolean }) => {
          n++
          if (sick && m.early === true) fail()
        })
        call.on('end', () => (sick ? fail() : cb(null, { id, n })))
      }
    })
    await app.listen('127.0.0.1:0')
    t.teardown(() => app.close())
    return app
  }
  const [sick, good] = await Promise.all([start('sick', true), start('good', false)])
  const discovery = new StaticDiscovery({ collect: [{ ip: '127.0.0.1', port: sick.port, weight: 1000 }, { ip: '127.0.0.1', port: good.port }] })
  const lanes = new FlowTagGrpc({ discovery, outlier: { maxEjectionPercent: 0 }, logger: quiet })
  t.teardown(() => lanes.close())
  const client = new CollectClient('nacos:///collect', ChannelCredentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => client.close())
  const send = (messages: number, end = true) => new Promise<{ id?: string; code?: number }>((resolve) => {
    const call = (client as unknown as { collect(cb: (err: { code: number } | null, r: { id: string }) => void): { write(m: object): void; end(): void; cancel(): void } })
      .collect((err, r) => resolve(err === null ? r : err))
    for (let i = 0; i < messages; i++) call.write({ i, early: !end })
    if (end) call.end()
    else t.teardown(() => call.cancel())
  })
  // The heavy sick instance takes nearly every first attempt.
  const many = await Promise.all(Array.from({ length: 5 }, () => send(2)))
  t.ok(many.some((r) => r.code === status.UNAVAILABLE), 'two messages: not retried, the failure reaches the caller')
  const open = await Promise.all(Array.from({ length: 5 }, () => send(1, false)))
  t.ok(open.some((r) => r.code === status.UNAVAILABLE), 'one message, not half-closed: not retried (more may follow)')
  const single = await Promise.all(Array.from({ length: 5 }, () => send(1)))
  t.same(single.map((r) => r.id), ['good', 'good', 'good', 'good', 'good'], 'one message, half-closed: retried on the other instance')
})
