// Warm-up and retry budgets over gRPC, with real servers on loopback: a new instance's share of
// calls ramps over the window, a lane of mostly new instances holds none back, a restart on the
// same address warms up again (through a real registration in the Nacos dev server too), and
// with one instance failing every call, calls sent upstream per call stay ≤ 1 + the budget ratio.
import t, { type Test } from 'tap'
import { credentials, type Metadata } from '@grpc/grpc-js'
import type { Meter } from '@opentelemetry/api'
import { NacosClient, StaticDiscovery, type StaticInstance } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { runWithFlow } from '@flowtag/context'
import { STARTED_AT_METADATA } from '@flowtag/outbound/lanes'
import { waitFor } from '@flowtag/test-kit'
import { FlowTagGrpc, type FlowTagGrpcOptions } from '../src/index.ts'
import { EchoClient, echo, startEcho } from './fixtures/echo.ts'

const quiet = { warn: () => {}, info: () => {} }
type Client = InstanceType<typeof EchoClient>

const at = (port: number, version: string, startedAt?: number): StaticInstance => ({
  ip: '127.0.0.1',
  port,
  metadata: { version, ...(startedAt === undefined ? {} : { [STARTED_AT_METADATA]: String(startedAt) }) }
})

function client (t: Test, target: string, opts: FlowTagGrpcOptions): Client {
  const lanes = new FlowTagGrpc({ stableLane: 'v1', logger: quiet, ...opts })
  const c = new EchoClient(target, credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { c.close(); lanes.close() })
  return c
}

/** `n` calls, `concurrency` at a time; the ids that served them. */
async function calls (c: Client, n: number, concurrency = 8, tag?: string): Promise<string[]> {
  const ids: string[] = []
  let next = 0
  const worker = async () => {
    while (next++ < n) ids.push((await (tag === undefined ? echo(c) : runWithFlow({ tag, baggage: {} }, () => echo(c)))).id)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return ids
}

const share = (ids: string[], ...who: string[]) => ids.filter((i) => who.includes(i)).length / ids.length

t.test("a new instance's share of calls ramps up over the window", async (t) => {
  const [a, b, c] = await Promise.all([startEcho('a'), startEcho('b'), startEcho('c')])
  t.teardown(() => Promise.all([a, b, c].map((s) => s.close())))
  const discovery = new StaticDiscovery({ echo: [at(a.port, 'v1'), at(b.port, 'v1')] })
  const windowMs = 9000
  const cl = client(t, 'nacos:///echo', { discovery, warmup: { windowMs } })
  await calls(cl, 20) // both connected; the first list is not warming
  const t0 = Date.now()
  discovery.set('echo', [at(a.port, 'v1'), at(b.port, 'v1'), at(c.port, 'v1')])
  const early: string[] = []
  const late: string[] = []
  while (Date.now() - t0 < windowMs + 1000 || late.length < 600) {
    const sentAt = Date.now() - t0
    const ids = await calls(cl, 40)
    if (sentAt < windowMs / 3) early.push(...ids)
    else if (sentAt > windowMs + 500) late.push(...ids)
  }
  t.comment(`c's share: first third of the window ${share(early, 'c').toFixed(3)} (${early.length} calls, expected ≤ 0.14), after ${share(late, 'c').toFixed(3)} (${late.length}, expected 0.333)`)
  t.ok(early.length >= 100, `enough calls in the first third of the window (${early.length})`)
  t.ok(share(early, 'c') < 0.25, 'held back at first')
  t.ok(share(late, 'c') > 0.25, 'its full share once warm')
})

t.test('a lane of mostly new instances holds none back; a fresh canary lane gets its whole share; warmup: false', async (t) => {
  const [a, b, c, x] = await Promise.all([startEcho('a'), startEcho('b'), startEcho('c'), startEcho('x')])
  t.teardown(() => Promise.all([a, b, c, x].map((s) => s.close())))
  const discovery = new StaticDiscovery({ most: [at(a.port, 'v1')], split: [at(a.port, 'v1'), at(b.port, 'v1')], off: [at(a.port, 'v1')] })

  const most = client(t, 'nacos:///most', { discovery })
  await calls(most, 10)
  discovery.set('most', [at(a.port, 'v1'), at(b.port, 'v1'), at(c.port, 'v1')])
  // Both new instances take calls once connected; then their share is full at once.
  await waitFor('b and c connected', async () => new Set(await calls(most, 60)).size === 3)
  t.ok(share(await calls(most, 600), 'b', 'c') > 0.55, 'two of three warming: full shares')

  const split = client(t, 'nacos:///split', { discovery, lanes: () => ({ stable: 'v1', weights: { v1: 90, v2: 10 } }) })
  await calls(split, 10)
  discovery.set('split', [at(a.port, 'v1'), at(b.port, 'v1'), at(x.port, 'v2')])
  t.same([...new Set(await calls(split, 20, 4, 'v2'))], ['x'], 'tagged calls reach the new canary instance')
  const ids = await calls(split, 2000)
  t.ok(Math.abs(share(ids, 'x') - 0.1) < 0.03, `the canary keeps its 10 % (${share(ids, 'x').toFixed(3)})`)

  const off = client(t, 'nacos:///off', { discovery, warmup: false })
  const perService = client(t, 'nacos:///off', { discovery, services: { off: { warmup: false } } })
  await Promise.all([calls(off, 10), calls(perService, 10)])
  discovery.set('off', [at(a.port, 'v1'), at(b.port, 'v1')])
  for (const [name, cl] of [['warmup: false', off], ['services.off.warmup: false', perService]] as const) {
    await waitFor('b connected', async () => new Set(await calls(cl, 40)).size === 2)
    t.ok(share(await calls(cl, 400), 'b') > 0.35, `${name}: a new instance gets its share at once`)
  }
})

t.test('a restart on the same address warms up again', async (t) => {
  const longAgo = Date.now() - 3_600_000
  const a = await startEcho('a')
  let b = await startEcho('b')
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const discovery = new StaticDiscovery({ echo: [at(a.port, 'v1', longAgo), at(b.port, 'v1', longAgo)] })
  const cl = client(t, 'nacos:///echo', { discovery })
  t.ok(share(await calls(cl, 400), 'b') > 0.35, 'started an hour ago: full share')
  const port = b.port
  await b.close()
  b = await startEcho('b2', {}, false, port)
  discovery.set('echo', [at(a.port, 'v1', longAgo), at(port, 'v1', Date.now())])
  await waitFor('the restarted instance connected', async () => (await calls(cl, 100)).includes('b2'), 20_000)
  t.ok(share(await calls(cl, 400), 'b2') < 0.25, 'its new start time: held back again')

  // Gone from the list and back with the same (or no) start time: seen arriving again.
  const c = await startEcho('c')
  t.teardown(() => c.close())
  const list = [at(a.port, 'v1', longAgo), at(c.port, 'v1')]
  discovery.set('again', list)
  const cl2 = client(t, 'nacos:///again', { discovery })
  await waitFor('both connected', async () => new Set(await calls(cl2, 40)).size === 2)
  t.ok(share(await calls(cl2, 400), 'c') > 0.35, 'in the first list without a start time: not warming')
  discovery.set('again', [list[0]!])
  await waitFor('c left', async () => !(await calls(cl2, 40)).includes('c'))
  discovery.set('again', list)
  await waitFor('c back', async () => (await calls(cl2, 100)).includes('c'), 20_000)
  t.ok(share(await calls(cl2, 400), 'c') < 0.25, 'back in the list: held back')
})

t.test('registered servers publish their start time; a restart through Nacos warms up again', async (t) => {
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const nacos = new NacosClient({ serverAddr: dev.address, namingPollIntervalMs: 100 })
  const caller = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false, namingPollIntervalMs: 100 })
  t.teardown(() => Promise.all([nacos.close(), caller.close()]))
  // Up for an hour, as far as callers can tell (a start time in the options' metadata wins).
  const longAgo = String(Date.now() - 3_600_000)
  const registration = { service: 'echo', version: 'v1', metadata: { [STARTED_AT_METADATA]: longAgo } }
  const a = await startEcho('a', { nacos, registration })
  let b = await startEcho('b', { nacos, registration })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  await waitFor('both registered', async () => (await caller.naming.instances('echo')).length === 2)
  t.same((await caller.naming.instances('echo')).map((i) => i.metadata[STARTED_AT_METADATA]), [longAgo, longAgo])
  const cl = client(t, 'nacos:///echo', { discovery: caller.naming })
  await waitFor('both connected', async () => new Set(await calls(cl, 40)).size === 2)
  t.ok(share(await calls(cl, 400), 'b') > 0.35, 'warm: full share')

  // b restarts on its port; this time it publishes its own start time.
  const port = b.port
  await b.close()
  await waitFor('b gone', async () => (await caller.naming.instances('echo')).length === 1)
  const before = Date.now()
  b = await startEcho('b2', { nacos, registration: { service: 'echo', version: 'v1' } }, false, port)
  await waitFor('b2 registered', async () => (await caller.naming.instances('echo')).length === 2)
  const published = Number((await caller.naming.instances('echo')).find((i) => i.port === port)?.metadata[STARTED_AT_METADATA])
  t.ok(published >= before && published <= Date.now(), `${STARTED_AT_METADATA} is when it started listening (${published - before} ms after the test's clock read)`)
  await waitFor('b2 connected', async () => (await calls(cl, 100)).includes('b2'), 20_000)
  const ids = await calls(cl, 400)
  t.ok(share(ids, 'b2') < 0.25, `the restarted instance is held back (${share(ids, 'b2').toFixed(3)}; full would be 0.5)`)
})

type Measure = { name: string; value: number; attrs: Record<string, unknown> }

function recordingMeter (out: Measure[]): Meter {
  return { createCounter: (name: string) => ({ add: (value: number, attrs: Record<string, unknown> = {}) => out.push({ name, value, attrs }) }) } as unknown as Meter
}

t.test('one instance failing every call: calls sent upstream per call stay ≤ 1 + the ratio', async (t) => {
  const [good, bad] = await Promise.all([startEcho('good'), startEcho('bad', {}, true)])
  t.teardown(() => Promise.all([good.close(), bad.close()]))
  const discovery = new StaticDiscovery({ echo: [at(good.port, 'v1'), at(bad.port, 'v1')] })
  const out: Measure[] = []
  const cl = client(t, 'nacos:///echo', {
    discovery,
    warmup: false,
    // Ejection off: the failing instance goes on being picked, as a bad lane would go on failing.
    outlier: { maxEjectionPercent: 0 },
    // A long interval and no floor: the bound is exact, whatever the machine's speed.
    retryBudget: { percent: 20, intervalMs: 600_000, minRetriesPerSecond: 0 },
    meter: recordingMeter(out)
  })
  // Both connected first (a call to a connecting lane waits; nothing else differs).
  await waitFor('both instances connected', async () => {
    await Promise.all(Array.from({ length: 20 }, () => echo(cl).catch(() => {})))
    return good.calls > 0 && bad.calls > 0
  })
  const [g0, b0] = [good.calls, bad.calls]
  out.length = 0
  const n = 1000
  let failed = 0
  let routingErrors = 0
  let next = 0
  await Promise.all(Array.from({ length: 10 }, async () => {
    while (next++ < n) {
      await echo(cl).catch((err: { code?: number; metadata?: Metadata }) => {
        failed++
        if ((err.metadata?.get('x-flowtag-error').length ?? 0) > 0) routingErrors++
      })
    }
  }))
  t.equal(routingErrors, 0, 'a failed call carries the instance\'s status, not a routing error')
  const upstream = good.calls - g0 + bad.calls - b0
  const refused = out.filter((m) => m.name === 'flowtag.grpc.retries_refused').reduce((s, m) => s + m.value, 0)
  t.comment(`${n} calls: ${upstream} sent upstream, ${refused} retries refused, ${failed} failed`)
  t.ok(upstream / n <= 1.2 + 20 / n, `≤ 1.2 upstream per call (${(upstream / n).toFixed(3)}; the warming calls above count in the budget too)`)
  t.ok(refused > 50, 'the budget refused retries (half of the first attempts fail: without it, 1.5 per call)')
  t.equal(failed, refused, 'a call whose retry was refused fails with the instance\'s status')
  t.match(out.find((m) => m.name === 'flowtag.grpc.retries_refused'), { attrs: { service: 'echo', lane: 'v1' } })
})

t.test('warm-up and budget options are validated, naming the field', async (t) => {
  const discovery = new StaticDiscovery()
  for (const [opts, field] of [
    [{ warmup: { windowMs: 0 } }, 'warmup.windowMs'],
    [{ warmup: true }, 'warmup'],
    [{ warmup: { minWeightPercent: 0 } }, 'warmup.minWeightPercent'],
    [{ retryBudget: { percent: -1 } }, 'retryBudget.percent'],
    [{ retryBudget: { typo: 1 } }, 'retryBudget.typo'],
    [{ services: { echo: { warmup: { aggression: 0 } } } }, 'services.echo.warmup.aggression'],
    [{ meter: {} }, 'meter']
  ] as const) {
    t.throws(() => new FlowTagGrpc({ discovery, ...(opts as object) }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: new RegExp(`"${field.replaceAll('.', '\\.')}"`) }, field)
  }
})
