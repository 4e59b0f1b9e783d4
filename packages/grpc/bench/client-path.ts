/**
 * The client-side cost of a unary call above the channel, in one process, no network: every
 * client talks to a fake channel that answers each call in a microtask, so what is measured is
 * grpc-js's client path (serialization, interceptors, the call objects) plus what each variant
 * adds there, not the transport, the resolver or the picker. Insensitive to the machine's load
 * in a way unary.ts is not: the variants run in the same process, round by round, and each
 * figure is a ratio to plain grpc-js within its round.
 *  - plain: a grpc-js client on the fake channel;
 *  - noop: the same with one no-op interceptor (grpc-js's interceptor chain alone);
 *  - flowtag: the channel of `FlowTagGrpc#clientOptions()` around the fake channel (the flow
 *    captured and written into `x-flow-tag`/`baggage`, retries armed).
 * Every call runs inside a flow tagged `v1`, in every variant.
 *   node bench/client-path.ts [rounds = 15]
 */
import { loadavg } from 'node:os'
import { credentials, InterceptingCall, makeGenericClientConstructor, Metadata, type ChannelInterface, type Interceptor, type InterceptingListener, type ServiceDefinition } from '@grpc/grpc-js'
import { runWithFlow } from '@flowtag/context'
import { StaticDiscovery } from '@flowtag/nacos'
import { FlowTagGrpc } from '../src/index.ts'
const json = { s: (v: unknown) => Buffer.from(JSON.stringify(v)), d: (b: Buffer) => JSON.parse(b.toString()) as unknown }
const Echo: ServiceDefinition = { echo: { path: '/bench.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: json.s, requestDeserialize: json.d, responseSerialize: json.s, responseDeserialize: json.d } }
const EchoClient = makeGenericClientConstructor(Echo, 'Echo')
type Client = { echo(req: object, cb: (err: Error | null, res: unknown) => void): void }
const fake = {
  close () {},
  getTarget: () => 'fake',
  getConnectivityState: () => 2,
  watchConnectivityState () {},
  getChannelzRef: () => ({}) as never,
  createCall () {
    let listener: InterceptingListener
    let msg: Buffer
    return {
      start (_md: Metadata, l: InterceptingListener) { listener = l },
      sendMessageWithContext (_c: unknown, m: Buffer) { msg = m },
      startRead () {},
      halfClose () { queueMicrotask(() => { listener.onReceiveMetadata(new Metadata()); listener.onReceiveMessage(msg); listener.onReceiveStatus({ code: 0, details: 'OK', metadata: new Metadata() }) }) },
      cancelWithStatus () {},
      getPeer: () => 'fake',
      getCallNumber: () => 1,
      setCredentials () {},
      getAuthContext: () => null
    }
  }
} as unknown as ChannelInterface
const discovery = new StaticDiscovery({})
const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1' })
const noop: Interceptor = (o, next) => new InterceptingCall(next(o))
const clients: Record<string, Client> = {
  plain: new EchoClient('fake', credentials.createInsecure(), { channelOverride: fake }) as never,
  noop: new EchoClient('fake', credentials.createInsecure(), { channelOverride: fake, interceptors: [noop] }) as never,
  flowtag: new EchoClient('fake', credentials.createInsecure(), lanes.clientOptions({ channelOverride: fake })) as never
}
const flow = { tag: 'v1', baggage: {} }
const req = { id: 1, sku: 'abc' }
async function slice (c: Client, n: number) {
  const t0 = process.cpuUsage()
  await Promise.all(Array.from({ length: 32 }, async () => {
    for (let i = 0; i < n / 32; i++) await runWithFlow(flow, () => new Promise<void>((resolve, reject) => c.echo(req, (e) => (e === null ? resolve() : reject(e)))))
  }))
  const u = process.cpuUsage(t0)
  return (u.user + u.system) / n
}
for (const c of Object.values(clients)) await slice(c, 20000)
const res: Record<string, number[]> = { plain: [], noop: [], flowtag: [] }
const rounds = Number(process.argv[2] ?? 15)
for (let r = 0; r < rounds; r++) for (const k of Object.keys(clients)) res[k]!.push(await slice(clients[k]!, 10000))
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const ratio = (k: string) => med(res[k]!.map((x, i) => x / res.plain![i]!))
console.log(`client path, ${rounds} rounds of 10,000 calls (32 in flight), Node ${process.version}, load average ${loadavg().map((x) => x.toFixed(1)).join(' / ')}`)
for (const k of Object.keys(res)) console.log(`${k.padEnd(8)} ${med(res[k]!).toFixed(2)} µs/call (median)  ${ratio(k).toFixed(3)}× plain (median of per-round ratios)`)
process.exit(0)
