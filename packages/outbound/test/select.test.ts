// Lane resolution and weighting on a ServiceTable, without the network (no pool is created).
import t from 'tap'
import type { Instance } from '@flowtag/nacos'
import { select, type Route } from '../src/select.ts'
import { ServiceTable, type Member } from '../src/service-table.ts'
import { defaultPoolFactory } from '../src/instance-pool.ts'
import { DEFAULT_RETRY_BUDGET } from '../src/retry-budget.ts'
import { DEFAULT_WARMUP } from '../src/warmup.ts'

const outlier = { consecutiveFailures: 2, baseEjectionMs: 60_000, maxEjectionMs: 120_000, maxEjectionPercent: 100, count5xx: false }

function table (list: Array<Partial<Instance> & { port: number }>, stable = 'v1'): ServiceTable {
  const st = new ServiceTable({ service: 'svc', labelKey: 'version', protocol: 'http:', poolOptions: { connections: null, connectTimeout: 2000, headersTimeout: 30_000, bodyTimeout: 30_000, keepAliveTimeout: 4000 }, factory: defaultPoolFactory, outlier, warmup: DEFAULT_WARMUP, retryBudget: DEFAULT_RETRY_BUDGET }, stable)
  st.update(
    list.map((i) => ({
      instanceId: String(i.port),
      ip: '127.0.0.1',
      weight: 1,
      healthy: true,
      enabled: true,
      ephemeral: true,
      clusterName: 'DEFAULT',
      serviceName: 'svc',
      metadata: {},
      ...i
    }))
  )
  t.teardown(() => st.close())
  return st
}

function shares (st: ServiceTable, tag: string | undefined, route: Route, n = 20_000): Record<number, number> {
  const out: Record<number, number> = {}
  for (let i = 0; i < n; i++) {
    const port = select(st, tag, route).instance.port
    out[port] = (out[port] ?? 0) + 1 / n
  }
  return out
}

const near = (a: number | undefined, b: number) => Math.abs((a ?? 0) - b) < 0.02

t.test('untagged lane weights multiply with instance weights', async (t) => {
  const st = table([
    { port: 1, metadata: { version: 'v1' }, weight: 1 },
    { port: 2, metadata: { version: 'v1' }, weight: 3 },
    { port: 3, metadata: { version: 'v2' }, weight: 5 }
  ])
  const s = shares(st, undefined, { stable: 'v1', strict: false, weights: { v1: 80, v2: 20 } })
  t.ok(near(s[1], 0.2) && near(s[2], 0.6) && near(s[3], 0.2), JSON.stringify(s))
  // A new list rebuilds the index: the split follows the new weights.
  st.update([
    { ip: '127.0.0.1', port: 1, weight: 1, healthy: true, enabled: true, clusterName: 'DEFAULT', metadata: { version: 'v1' } },
    { ip: '127.0.0.1', port: 3, weight: 5, healthy: true, enabled: true, clusterName: 'DEFAULT', metadata: { version: 'v2' } }
  ])
  const after = shares(st, undefined, { stable: 'v1', strict: false, weights: { v1: 80, v2: 20 } })
  t.ok(near(after[1], 0.8) && near(after[3], 0.2) && after[2] === undefined, JSON.stringify(after))
})

t.test("an empty weighted lane's share goes to stable, or fails when strict", async (t) => {
  const st = table([{ port: 1, metadata: { version: 'v1' } }])
  const s = shares(st, undefined, { stable: 'v1', strict: false, weights: { v1: 50, v3: 50 } })
  t.same(Object.keys(s), ['1'])
  let failed = 0
  const codes = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    try {
      select(st, undefined, { stable: 'v1', strict: true, weights: { v1: 50, v3: 50 } })
    } catch (err) {
      codes.add((err as { code: string }).code)
      failed++
    }
  }
  t.ok(failed > 800 && failed < 1200, `about half fail (${failed})`)
  t.same([...codes], ['FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE'])
  t.equal(select(st, undefined, { stable: 'v1', strict: false, weights: { v1: 0 } }).instance.port, 1, 'no positive weight: stable')
})

t.test('ejection rebuilds the tables; retries exclude tried members', async (t) => {
  const st = table([
    { port: 1, metadata: { version: 'v2' } },
    { port: 2, metadata: { version: 'v2' } },
    { port: 3, metadata: { version: 'v1' } }
  ])
  const route = { stable: 'v1', strict: false, weights: { v2: 1 } }
  const m1 = [...st.members.values()].find((m) => m.instance.port === 1) as Member
  st.recordFailure(m1)
  st.recordFailure(m1)
  t.equal(m1.ejectedUntil > 0, true, 'ejected after two failures')
  t.same(Object.keys(shares(st, undefined, route, 2000)), ['2'])
  t.same(Object.keys(shares(st, 'v2', route, 2000)), ['2'])
  const m2 = [...st.members.values()].find((m) => m.instance.port === 2) as Member
  t.equal(select(st, undefined, route, [m2]).instance.port, 3, 'retry: lane of the failed member, then stable')
  t.throws(() => select(st, 'v2', { ...route, strict: true }, [m2]), { code: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE', message: /no other instance/ })
  st.recordFailure(m2)
  st.recordFailure(m2)
  t.throws(() => select(st, 'v2', { ...route, strict: true }), { code: 'FLOWTAG_OUTBOUND_ALL_EJECTED' })
})
