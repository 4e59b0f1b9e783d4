// Targets with a namespace and a group, the interceptor on a fixed-address client, calls without
// retries, existing baggage in the metadata, option cross-checks.
import t, { type Test } from 'tap'
import { credentials, Metadata, status } from '@grpc/grpc-js'
import { NacosClient, StaticDiscovery } from '@flowtag/nacos'
import { currentFlow, runWithFlow } from '@flowtag/context'
import { FlowTagGrpc } from '../src/index.ts'
import { EchoClient, EchoService, echo, startEcho } from './fixtures/echo.ts'

const quiet = { warn: () => {}, info: () => {} }

async function one (t: Test, service = 'echo') {
  const server = await startEcho('a1')
  t.teardown(() => server.close())
  const discovery = new StaticDiscovery({ [service]: [{ ip: '127.0.0.1', port: server.port, metadata: { version: 'v1' } }] })
  return { server, discovery }
}

t.test('nacos://<namespace>/<service>: the discovery namespace is accepted, another is refused', async (t) => {
  const { discovery } = await one(t)
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', namespace: 'ns1', logger: quiet })
  t.teardown(() => lanes.close())
  const same = new EchoClient('nacos://ns1/echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => same.close())
  t.match(await echo(same), { id: 'a1' })
  const other = new EchoClient('nacos://ns2/echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => other.close())
  for (let i = 0; i < 2; i++) {
    // the second call is answered from the resolver's remembered error
    t.match(await echo(other).catch((e: unknown) => e), { code: status.UNAVAILABLE, details: /target namespace "ns2" is not the discovery's \("ns1"\)/ })
  }

  const unset = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet })
  t.teardown(() => unset.close())
  const any = new EchoClient('nacos://ns2/echo', credentials.createInsecure(), unset.clientOptions())
  t.teardown(() => any.close())
  t.match(await echo(any).catch((e: unknown) => e), { code: status.UNAVAILABLE, details: /target namespace "ns2" given, but FlowTagGrpc has no `namespace` option/ })
})

t.test('a group option prefixes plain service names; group@@service targets are kept', async (t) => {
  const { discovery } = await one(t, 'G@@echo')
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', group: 'G', logger: quiet })
  t.teardown(() => lanes.close())
  for (const target of ['nacos:///echo', 'nacos:///G@@echo']) {
    const c = new EchoClient(target, credentials.createInsecure(), lanes.clientOptions())
    t.teardown(() => c.close())
    t.match(await echo(c), { id: 'a1' }, target)
  }
})

t.test('the interceptor alone carries the flow to a fixed address; maxRetries 0 does too', async (t) => {
  const { server, discovery } = await one(t)
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', maxRetries: 0, logger: quiet })
  t.teardown(() => lanes.close())
  const fixed = new EchoClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), { interceptors: [lanes.interceptor] })
  t.teardown(() => fixed.close())
  t.match(await runWithFlow({ tag: 'v7', baggage: { user: 'u1' } }, () => echo(fixed)), { id: 'a1', tag: 'v7', baggage: { user: 'u1' } })
  t.match(await echo(fixed), { tag: undefined }, 'no flow: nothing written')

  const routed = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions({ interceptors: [] }))
  t.teardown(() => routed.close())
  t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(routed)), { id: 'a1', tag: 'v2' }, 'v2 falls back to stable, the tag travels on')
})

t.test('baggage already in the metadata is kept beside the flow', async (t) => {
  const { discovery } = await one(t)
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet })
  t.teardown(() => lanes.close())
  const c = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => c.close())
  const md = new Metadata()
  md.set('baggage', 'tenant=acme')
  const r = await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(c, md))
  t.match(r, { tag: 'v2', baggage: { tenant: 'acme' } })
  const md2 = new Metadata()
  md2.set('baggage', 'tenant=acme')
  md2.set('x-flow-tag', 'v9')
  t.match(await runWithFlow({ baggage: {} }, () => echo(c, md2)), { tag: undefined, baggage: { tenant: 'acme' } }, 'a flow without a tag removes a tag in the metadata')
})

t.test('outlier.maxEjectionMs below baseEjectionMs is refused', async (t) => {
  const discovery = new StaticDiscovery({})
  t.throws(() => new FlowTagGrpc({ discovery, outlier: { baseEjectionMs: 5000, maxEjectionMs: 1000 } }), {
    code: 'FLOWTAG_GRPC_BAD_OPTION',
    message: /"outlier.maxEjectionMs": must be >= outlier.baseEjectionMs/
  })
})

t.test('a new stable lane from the lanes resolver moves unlabelled instances with it', async (t) => {
  const servers = await Promise.all(['a1', 'b2', 'c0'].map((id) => startEcho(id)))
  t.teardown(() => Promise.all(servers.map((s) => s.close())))
  const discovery = new StaticDiscovery({
    echo: [
      { ip: '127.0.0.1', port: servers[0]!.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: servers[1]!.port, metadata: { version: 'v2' } },
      { ip: '127.0.0.1', port: servers[2]!.port }
    ]
  })
  let stable = 'v1'
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet, lanes: () => ({ stable }) })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  const ids = async (tag: string | undefined, n = 30) => {
    const seen = new Set<string>()
    for (let i = 0; i < n; i++) seen.add((await runWithFlow({ tag, baggage: {} }, () => echo(client))).id)
    return [...seen].sort()
  }
  t.same(await ids('v1'), ['a1', 'c0'], 'stable v1: the unlabelled instance serves v1')
  t.same(await ids('v2'), ['b2'])
  stable = 'v2'
  t.same(await ids('v2'), ['b2', 'c0'], 'stable v2: the unlabelled instance moved to v2')
  t.same(await ids('v1'), ['a1'])
})

t.test('server: ready while serving, not once closing; IPv6 peers are trusted by CIDR', async (t) => {
  const { FlowTagGrpcServer } = await import('../src/server-entry.ts')
  const app = new FlowTagGrpcServer({ shutdownTimeoutMs: 200, flow: { trust: { cidrs: ['::1/128'] } } })
  t.equal(app.ready, false, 'not listening yet')
  app.addService(EchoService, {
    echo: (_call: unknown, cb: (err: null, reply: object) => void) => cb(null, { id: 'six', tag: currentFlow()?.tag, baggage: {} })
  })
  const port = await app.listen('[::1]:0')
  t.equal(app.ready, true)
  const client = new EchoClient(`[::1]:${port}`, credentials.createInsecure())
  t.teardown(() => client.close())
  const md = new Metadata()
  md.set('x-flow-tag', 'v4')
  t.match(await echo(client, md), { id: 'six', tag: 'v4' }, 'a tag from ::1 is trusted')
  const closing = app.close()
  t.equal(app.ready, false, 'closing')
  await closing
})

t.test('nacos:<service> without slashes names the service too', async (t) => {
  const { discovery } = await one(t)
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet })
  t.teardown(() => lanes.close())
  const c = new EchoClient('nacos:echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => c.close())
  t.match(await echo(c), { id: 'a1' })
})

t.test('a failing discovery fails calls with FLOWTAG_OUTBOUND_DISCOVERY_FAILED', async (t) => {
  for (const reason of [new Error('registry down'), 'registry down']) {
    const failing = { instances: () => Promise.reject(reason), subscribe: () => () => {} }
    const lanes = new FlowTagGrpc({ discovery: failing, stableLane: 'v1', logger: quiet })
    const c = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
    t.teardown(() => { c.close(); lanes.close() })
    const err = await echo(c).catch((e: unknown) => e)
    t.match(err, { code: status.UNAVAILABLE, details: /discovery of "echo" failed: registry down/ })
    t.same((err as { metadata: Metadata }).metadata.get('x-flowtag-error'), ['FLOWTAG_OUTBOUND_DISCOVERY_FAILED'])
  }
})

t.test('a change that arrives while the first load is pending wins over the older list', async (t) => {
  const { discovery } = await one(t)
  const live = await discovery.instances('echo')
  const racing = {
    // the subscription delivers the current list at once; the load answers later with a stale, empty one
    subscribe: (_s: string, listener: (change: { instances: typeof live }) => void) => {
      queueMicrotask(() => listener({ instances: live }))
      return () => {}
    },
    instances: () => new Promise<typeof live>((resolve) => setTimeout(() => resolve([]), 50))
  }
  const lanes = new FlowTagGrpc({ discovery: racing, stableLane: 'v1', logger: quiet })
  const c = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { c.close(); lanes.close() })
  t.match(await echo(c), { id: 'a1' })
  await new Promise((r) => setTimeout(r, 100))
  t.match(await echo(c), { id: 'a1' }, 'the late empty load did not replace the list')
})

t.test('signed tags are reused per lane and written beside baggage; a listed duplicate is one instance', async (t) => {
  const key = { id: 'k1', secret: 'a-secret-of-at-least-32-characters!!' }
  const signedOnly = await startEcho('signed', { flow: { trust: { signed: { keys: [key] } } } })
  t.teardown(() => signedOnly.close())
  const entry = { ip: '127.0.0.1', port: signedOnly.port }
  const discovery = new StaticDiscovery({ signed: [entry, entry] })
  const signing = new FlowTagGrpc({ discovery, logger: quiet, sign: { key } })
  const c = new EchoClient('nacos:///signed', credentials.createInsecure(), signing.clientOptions())
  t.teardown(() => { c.close(); signing.close() })
  for (let i = 0; i < 3; i++) {
    t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(c)), { id: 'signed', tag: 'v2' }, `call ${i + 1}: the signed tag is trusted`)
  }
  t.match(await runWithFlow({ tag: 'v2', baggage: { user: 'u1' } }, () => echo(c)), { id: 'signed', tag: 'v2' }, 'signed on the path that also writes baggage')
  t.equal(signedOnly.calls, 4)
})

t.test('a server given nacos without registration is refused', async (t) => {
  const { FlowTagGrpcServer } = await import('../src/server-entry.ts')
  const nacos = new NacosClient({ serverAddr: '127.0.0.1:1' })
  t.teardown(() => nacos.close())
  t.throws(() => new FlowTagGrpcServer({ nacos }), { code: 'FLOWTAG_GRPC_BAD_OPTION', field: 'registration', message: /"registration": nacos and registration go together/ })
  t.throws(() => new FlowTagGrpcServer({ registration: { service: 'x' } } as never), { code: 'FLOWTAG_GRPC_BAD_OPTION', field: 'nacos', path: ['nacos'], problem: 'nacos and registration go together' })
})
