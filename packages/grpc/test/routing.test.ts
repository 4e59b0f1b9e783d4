// Lanes over gRPC: nacos:/// targets through a StaticDiscovery, per-call lane picks, fallback,
// strict, propagation into the server's flow, bad input.
import t, { type Test } from 'tap'
import { credentials, Metadata, status } from '@grpc/grpc-js'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagGrpc } from '../src/index.ts'
import { EchoClient, echo, startEcho } from './fixtures/echo.ts'

const quiet = { warn: () => {}, info: () => {} }

async function cluster (t: Test, specs: Array<[string, string]>) {
  const servers = await Promise.all(specs.map(([id]) => startEcho(id)))
  t.teardown(() => Promise.all(servers.map((s) => s.close())))
  const discovery = new StaticDiscovery({
    echo: servers.map((s, i) => ({ ip: '127.0.0.1', port: s.port, metadata: { version: specs[i]![1] } }))
  })
  return { servers, discovery }
}

t.test('each call goes to its lane, untagged to stable, an empty lane falls back', async (t) => {
  const { discovery } = await cluster(t, [['a1', 'v1'], ['b2', 'v2']])
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  for (let i = 0; i < 10; i++) {
    const r = await runWithFlow({ tag: 'v2', baggage: { user: 'u1' } }, () => echo(client))
    t.match(r, { id: 'b2', tag: 'v2', baggage: { user: 'u1' } })
  }
  const plain = await echo(client)
  t.match(plain, { id: 'a1', tag: undefined })
  const v3 = await runWithFlow({ tag: 'v3', baggage: {} }, () => echo(client))
  t.match(v3, { id: 'a1', tag: 'v3' }, 'v3 has no instance: stable serves it, the tag travels on')
})

t.test('strict lanes fail with the outbound code; weights split untagged calls', async (t) => {
  const { discovery } = await cluster(t, [['a1', 'v1'], ['b2', 'v2']])
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet, lanes: () => ({ stable: 'v1', strict: true, weights: { v1: 50, v2: 50 } }) })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  const err = await runWithFlow({ tag: 'v3', baggage: {} }, () => echo(client)).catch((e: unknown) => e)
  t.match(err, { code: status.UNAVAILABLE, details: /no available instance of "echo" in lane "v3"/ })
  t.same((err as { metadata: Metadata }).metadata.get('x-flowtag-error'), ['FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE'])
  const seen: Record<string, number> = {}
  for (let i = 0; i < 200; i++) {
    const r = await echo(client)
    seen[r.id] = (seen[r.id] ?? 0) + 1
  }
  t.ok((seen.a1 ?? 0) > 60 && (seen.b2 ?? 0) > 60, `untagged calls split by lane weight: ${JSON.stringify(seen)}`)
})

t.test('list changes reach the picker without a registry call per RPC', async (t) => {
  const { servers, discovery } = await cluster(t, [['a1', 'v1'], ['b2', 'v2']])
  let loads = 0
  const counting = { instances: (s: string) => { loads++; return discovery.instances(s) }, subscribe: discovery.subscribe.bind(discovery) }
  const lanes = new FlowTagGrpc({ discovery: counting, stableLane: 'v1', logger: quiet })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client)), { id: 'b2' })
  discovery.set('echo', [{ ip: '127.0.0.1', port: servers[0]!.port, metadata: { version: 'v1' } }])
  for (let i = 0; i < 20; i++) t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client)), { id: 'a1' })
  t.equal(loads, 1, 'one load, then the subscription')
})

t.test('bad input: unknown service, malformed target, invalid tag, no configuration', async (t) => {
  const { discovery } = await cluster(t, [['a1', 'v1']])
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet })
  t.teardown(() => lanes.close())
  const unknown = new EchoClient('nacos:///nobody', credentials.createInsecure(), lanes.clientOptions())
  const err = await echo(unknown).catch((e: unknown) => e)
  t.match(err, { code: status.UNAVAILABLE })
  t.same((err as { metadata: Metadata }).metadata.get('x-flowtag-error'), ['FLOWTAG_OUTBOUND_UNKNOWN_SERVICE'])
  unknown.close()

  const bad = new EchoClient('nacos:///bad name!', credentials.createInsecure(), lanes.clientOptions())
  const badErr = await echo(bad).catch((e: unknown) => e)
  t.match(badErr, { code: status.UNAVAILABLE, details: /invalid target "nacos:\/\/\/bad name!"/ })
  bad.close()
  const empty = new EchoClient('nacos:///', credentials.createInsecure(), lanes.clientOptions())
  t.match(await echo(empty).catch((e: unknown) => e), { code: status.UNAVAILABLE, details: /invalid target "nacos:\/\/\/": expected nacos:\/\/\/<service>/ })
  empty.close()

  const bare = new EchoClient('nacos:///echo', credentials.createInsecure())
  const bareErr = await echo(bare).catch((e: unknown) => e)
  t.match(bareErr, { code: status.UNAVAILABLE, details: /clientOptions/ })
  bare.close()

  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => client.close())
  const md = new Metadata()
  md.set('x-flow-tag', 'not a tag!')
  t.match(await echo(client, md), { id: 'a1', tag: undefined }, 'an invalid incoming tag is ignored')

  t.throws(() => new FlowTagGrpc({ discovery: {} as never }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"discovery"/ })
  t.throws(() => new FlowTagGrpc({ discovery, maxRetries: 9 }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"maxRetries"/ })
})
