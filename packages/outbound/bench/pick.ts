// Cost of choosing an instance (lane lookup + O(1) weighted pick) at 3, 100 and 1,000 instances,
// and at 1,000 with warm-up on and one instance in ten warming (held back in its lane); and what
// warm-up costs besides: the index rebuild (with the lane-weight table) done every second while
// an instance warms. `node bench/pick.ts` prints ns/op: best of 9 interleaved runs of 1,000,000
// picks per case, and µs per rebuild: best of 9 runs of 200.
import type { Instance } from '@flowtag/nacos'
import { select } from '../src/select.ts'
import { ServiceTable } from '../src/service-table.ts'
import { defaultPoolFactory } from '../src/instance-pool.ts'
import { DEFAULT_RETRY_BUDGET } from '../src/retry-budget.ts'
import { DEFAULT_WARMUP } from '../src/warmup.ts'

/** `warming`: that many instances arrive after the first list (they warm up for DEFAULT_WARMUP's minute). */
function table (n: number, warming = 0): ServiceTable {
  const t = new ServiceTable(
    {
      service: 'svc',
      labelKey: 'version',
      protocol: 'http:',
      poolOptions: { connections: null, connectTimeout: 2000, headersTimeout: 30_000, bodyTimeout: 30_000, keepAliveTimeout: 4000 },
      factory: defaultPoolFactory,
      outlier: { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50, count5xx: false },
      warmup: DEFAULT_WARMUP,
      retryBudget: DEFAULT_RETRY_BUDGET
    },
    'v1'
  )
  const list: Instance[] = []
  for (let i = 0; i < n; i++) {
    list.push({
      instanceId: `i${i}`,
      ip: `10.0.${i >> 8}.${i & 255}`,
      port: 8080,
      weight: 1 + (i % 7),
      healthy: true,
      enabled: true,
      ephemeral: true,
      clusterName: 'DEFAULT',
      serviceName: 'svc',
      // Nine in ten in the stable lane, the rest in the canary lane.
      metadata: { version: i % 10 === 0 ? 'v2' : 'v1' }
    })
  }
  t.update(list.slice(0, n - warming))
  if (warming > 0) {
    t.update(list)
    let held = 0
    for (const lane of t.lanes.values()) if (lane.heldBack) held += lane.warming
    if (held !== warming) throw new Error(`expected ${warming} warming instances held back, got ${held}`)
  }
  return t
}

const route = { stable: 'v1', strict: false, weights: undefined }
const weighted = { stable: 'v1', strict: false, weights: { v1: 90, v2: 10 } }
const N = 1_000_000
const RUNS = 9
let sink = 0

const cases: Array<{ size: string; name: string; fn: () => void }> = []
for (const n of [3, 100, 1000]) {
  const t = table(n)
  const alias = t.lanes.get('v1')!.table!
  const size = `${n} instances`
  cases.push(
    { size, name: 'alias table alone (stable lane)', fn: () => void (sink += alias.pick().instance.port) },
    { size, name: 'tagged', fn: () => void (sink += select(t, 'v2', route).instance.port) },
    { size, name: 'untagged', fn: () => void (sink += select(t, undefined, route).instance.port) },
    { size, name: 'untagged, lane weights', fn: () => void (sink += select(t, undefined, weighted).instance.port) }
  )
}
{
  // The instances arriving last are spread over both lanes (every tenth is in v2).
  const t = table(1000, 100)
  const size = '1000 instances, 100 warming'
  cases.push(
    { size, name: 'tagged', fn: () => void (sink += select(t, 'v2', route).instance.port) },
    { size, name: 'untagged', fn: () => void (sink += select(t, undefined, route).instance.port) },
    { size, name: 'untagged, lane weights', fn: () => void (sink += select(t, undefined, weighted).instance.port) }
  )
}
// Runs interleave the cases, so a burst of load on this shared machine hits all of them alike;
// the best run of each case is its cost.
const best = cases.map(() => Infinity)
for (let run = 0; run < RUNS; run++) {
  cases.forEach((c, i) => {
    const start = process.hrtime.bigint()
    for (let k = 0; k < N; k++) c.fn()
    best[i] = Math.min(best[i]!, Number(process.hrtime.bigint() - start) / N)
  })
}
const results: Record<string, Record<string, number>> = {}
cases.forEach((c, i) => ((results[c.size] ??= {})[c.name] = Number(best[i]!.toFixed(1))))
let rebuild = Infinity
{
  const t = table(1000, 100)
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint()
    for (let k = 0; k < 200; k++) {
      t.rebuild()
      sink += select(t, undefined, weighted).instance.port
    }
    rebuild = Math.min(rebuild, Number(process.hrtime.bigint() - start) / 200 / 1000)
  }
}
console.log(JSON.stringify({ node: process.version, picksPerRun: N, runs: RUNS, nsPerPick: results, usPerWarmupRebuildAt1000: Number(rebuild.toFixed(1)), sink: sink > 0 }, null, 2))
