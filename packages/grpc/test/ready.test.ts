// Only READY instances take calls while their lane has one: an instance that accepts TCP and never
// speaks HTTP/2 (stuck CONNECTING for ever) holds no call. A lane with no READY instance waits for
// its own instances at most `connectWaitMs`, then falls back to stable (or fails fast, strict); an
// instance that becomes READY later serves its lane again.
import t, { type Test } from 'tap'
import { credentials, Metadata, status } from '@grpc/grpc-js'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { waitFor } from '@flowtag/test-kit'
import { FlowTagGrpc, type FlowTagGrpcOptions } from '../src/index.ts'
import { EchoClient, startEcho, type EchoReply } from './fixtures/echo.ts'
import { startStuck } from './fixtures/stuck.ts'

const quiet = { warn: () => {}, info: () => {} }
type Client = InstanceType<typeof EchoClient>
type Outcome = EchoReply | { code: number; details: string; error: string[]; ms: number }

/** One call in `lane` (untagged when undefined) with a deadline (and grpc-js's metadata options); never rejects. */
function call (client: Client, lane: string | undefined, deadlineMs: number, options: { waitForReady?: boolean } = {}): Promise<Outcome> {
  const started = Date.now()
  const run = () => new Promise<Outcome>((resolve) => {
    (client as unknown as { echo(req: object, md: Metadata, opts: object, cb: (err: { code: number; details: string; metadata: Metadata } | null, r: EchoReply) => void): void })
      .echo({}, new Metadata(options), { deadline: Date.now() + deadlineMs }, (err, reply) => {
        resolve(err === null ? reply : { code: err.code, details: err.details, error: err.metadata.get('x-flowtag-error').map(String), ms: Date.now() - started })
      })
  })
  return lane === undefined ? run() : runWithFlow({ tag: lane, baggage: {} }, run)
}

function clientOf (t: Test, discovery: StaticDiscovery, options: Partial<FlowTagGrpcOptions> = {}): Client {
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet, ...options })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  return client
}

const summary = (rs: Outcome[]) => JSON.stringify(rs.map((r) => ('id' in r ? r.id : `${r.code}: ${r.details}`)))

t.test('a stuck instance holds no call while its lane has a READY one (the lane v2 and the stable lane)', async (t) => {
  const [v1, v2] = await Promise.all([startEcho('v1'), startEcho('v2')])
  const [stuckV1, stuckV2] = await Promise.all([startStuck(), startStuck()])
  t.teardown(() => Promise.all([v1.close(), v2.close(), stuckV1.close(), stuckV2.close()]))
  const discovery = new StaticDiscovery({
    echo: [
      { ip: '127.0.0.1', port: v1.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: stuckV1.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: v2.port, metadata: { version: 'v2' } },
      { ip: '127.0.0.1', port: stuckV2.port, metadata: { version: 'v2' } }
    ]
  })
  const client = clientOf(t, discovery)
  // A fresh channel: the first wave meets both v2 instances connecting.
  const results: Outcome[] = []
  for (let wave = 0; wave < 4; wave++) results.push(...await Promise.all(Array.from({ length: 10 }, () => call(client, 'v2', 1500))))
  t.same(results.map((r) => ('id' in r ? `${r.id}/${r.tag}` : 'failed')), Array(40).fill('v2/v2'), `40 v2 calls with a 1.5 s deadline, all on the working v2 instance: ${summary(results)}`)
  t.ok(stuckV2.accepted >= 1, 'the stuck v2 instance was connected to (and never answered)')

  const untagged = await Promise.all(Array.from({ length: 20 }, () => call(client, undefined, 1500)))
  t.same(untagged.map((r) => ('id' in r ? r.id : 'failed')), Array(20).fill('v1'), `untagged calls all on the working stable instance: ${summary(untagged)}`)
  t.ok(stuckV1.accepted >= 1, 'the stuck stable instance was connected to')
})

t.test('a fresh channel waits for its lane\'s own instances rather than leave the lane', async (t) => {
  const [v1, v2] = await Promise.all([startEcho('v1'), startEcho('v2')])
  t.teardown(() => Promise.all([v1.close(), v2.close()]))
  const discovery = new StaticDiscovery({
    echo: [
      { ip: '127.0.0.1', port: v1.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: v2.port, metadata: { version: 'v2' } }
    ]
  })
  // Generous: the wait ends as soon as the instance is READY (a busy machine may take a while).
  const client = clientOf(t, discovery, { connectWaitMs: 30_000 })
  const first = await Promise.all([call(client, 'v2', 30_000), call(client, 'v2', 30_000), call(client, undefined, 30_000)])
  t.same(first.map((r) => ('id' in r ? r.id : 'failed')), ['v2', 'v2', 'v1'], `the first calls stay in their lanes: ${summary(first)}`)
})

t.test('a lane whose instances are all stuck: fallback to stable (permissive), UNAVAILABLE at once (strict), its lane again once READY', async (t) => {
  const [v1, v2] = await Promise.all([startEcho('v1'), startEcho('v2')])
  const stuck = await startStuck()
  t.teardown(() => Promise.all([v1.close(), v2.close(), stuck.close()]))
  const discovery = new StaticDiscovery({
    echo: [
      { ip: '127.0.0.1', port: v1.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: stuck.port, metadata: { version: 'v2' } }
    ]
  })
  const permissive = clientOf(t, discovery, { connectWaitMs: 300 })
  const strict = clientOf(t, discovery, { connectWaitMs: 300, strict: true })
  // Without a bound these calls would wait for their deadline (10 s).
  const fell = await Promise.all(Array.from({ length: 10 }, () => call(permissive, 'v2', 10_000)))
  t.same(fell.map((r) => ('id' in r ? `${r.id}/${r.tag}` : 'failed')), Array(10).fill('v1/v2'), `v2 calls fall back to stable after the wait: ${summary(fell)}`)
  const failed = await Promise.all(Array.from({ length: 10 }, () => call(strict, 'v2', 10_000)))
  for (const r of failed) {
    t.match(r, { code: status.UNAVAILABLE, details: /no instance of "echo" in lane "v2" can take calls \(lane "v2": 1 connecting for over connectWaitMs \(300 ms\)\)/, error: ['FLOWTAG_OUTBOUND_ALL_EJECTED'] }, 'strict: a clear UNAVAILABLE, not a deadline')
    t.ok('ms' in r && r.ms < 9000, 'strict calls end before their deadline')
  }
  t.ok(stuck.accepted >= 1, 'the stuck instance was connected to')

  // A waitForReady call in a strict lane waits for the lane (up to its deadline) instead of failing.
  const waiting = call(strict, 'v2', 60_000, { waitForReady: true })
  const early = await Promise.race([waiting, new Promise((resolve) => setTimeout(resolve, 500, 'still waiting'))])
  t.equal(early, 'still waiting', 'waitForReady: not failed while the lane has no READY instance')
  stuck.heal(v2.port) // the stuck connection finishes its handshake: the instance becomes READY
  t.match(await waiting, { id: 'v2', tag: 'v2' }, 'the waitForReady call is served by the lane once READY')
  await waitFor('the permissive client to use v2 again', async () => {
    const r = await call(permissive, 'v2', 10_000)
    return 'id' in r && r.id === 'v2'
  }, 30_000)
  const back = await Promise.all(Array.from({ length: 10 }, () => call(strict, 'v2', 10_000)))
  t.same(back.map((r) => ('id' in r ? r.id : 'failed')), Array(10).fill('v2'), `the READY instance serves its lane again: ${summary(back)}`)
})

t.test('a stable lane with no READY instance fails fast after the wait, UNAVAILABLE', async (t) => {
  const stuck = await startStuck()
  t.teardown(() => stuck.close())
  const discovery = new StaticDiscovery({ echo: [{ ip: '127.0.0.1', port: stuck.port, metadata: { version: 'v1' } }] })
  const client = clientOf(t, discovery, { connectWaitMs: 200 })
  const rs = await Promise.all([call(client, undefined, 10_000), call(client, 'v3', 10_000)])
  for (const r of rs) t.match(r, { code: status.UNAVAILABLE, details: /lane "v1": 1 connecting for over connectWaitMs \(200 ms\)/, error: ['FLOWTAG_OUTBOUND_ALL_EJECTED'] }, 'untagged and fallback calls fail with a routing status, not a deadline')
})

t.test('an instance that turns healthy in a lane with a READY one is connected and takes calls', async (t) => {
  const [a, b] = await Promise.all([startEcho('a'), startEcho('b')])
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const list = (healthy: boolean) => [
    { ip: '127.0.0.1', port: a.port, metadata: { version: 'v1' } },
    { ip: '127.0.0.1', port: b.port, metadata: { version: 'v1' }, healthy }
  ]
  const discovery = new StaticDiscovery({ echo: list(false) })
  const client = clientOf(t, discovery)
  const before = await Promise.all(Array.from({ length: 10 }, () => call(client, undefined, 10_000)))
  t.same(before.map((r) => ('id' in r ? r.id : 'failed')), Array(10).fill('a'), 'the unhealthy instance takes no call')
  discovery.set('echo', list(true))
  // b is not READY yet, so no pick reaches it: the list update (or grpc-js's exitIdle) must connect it.
  await waitFor('the instance that turned healthy to take calls', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => call(client, undefined, 10_000)))
    return rs.some((r) => 'id' in r && r.id === 'b')
  }, 30_000)
})

t.test('connectWaitMs is validated', async (t) => {
  const discovery = new StaticDiscovery({})
  t.throws(() => new FlowTagGrpc({ discovery, connectWaitMs: -1 }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"connectWaitMs"/ })
  t.throws(() => new FlowTagGrpc({ discovery, connectWaitMs: 1.5 }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"connectWaitMs"/ })
  const lanes = new FlowTagGrpc({ discovery })
  t.equal(lanes.options.connectWaitMs, 1000, 'default: one second')
  lanes.close()
})
