// Differential test of ServiceTable's change-set path: two tables follow the same random history
// of a service's list (instances arriving and leaving, lanes, weights, health, warm-up restarts,
// consumer-only roles, ejections, a new stable lane), one applying each change set a
// StaticDiscovery reports, the other the whole list (every lane rebuilt). After every step they
// must route alike: the same members in the same lanes, the same pick chances (read off the
// alias tables), the same fallbacks and errors, the same warm-up weights and retry budgets.
// Date.now() is a fake clock here, so that warm-up weights are computed for the same instant.
import t from 'tap'
import { request } from 'undici'
import { runWithFlow } from '@flowtag/context'
import { StaticDiscovery, type ServiceChange, type StaticInstance } from '@flowtag/nacos'
import { FlowTagDispatcher } from '../src/index.ts'
import { startInstance } from './fixtures/instances.ts'
import { defaultPoolFactory } from '../src/instance-pool.ts'
import { DEFAULT_RETRY_BUDGET } from '../src/retry-budget.ts'
import { ServiceTable, type Member } from '../src/service-table.ts'
import { ROLE_METADATA } from '../src/discovery.ts'
import { STARTED_AT_METADATA } from '../src/warmup.ts'
import type { Route } from '../src/lanes.ts'

const SERVICE = 'svc'

function makeTable (): ServiceTable {
  return new ServiceTable({
    service: SERVICE,
    labelKey: 'version',
    protocol: 'http:',
    poolOptions: { connections: null, connectTimeout: 2000, headersTimeout: 30_000, bodyTimeout: 30_000, keepAliveTimeout: 4000 },
    factory: defaultPoolFactory,
    outlier: { consecutiveFailures: 2, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50, count5xx: false },
    warmup: { windowMs: 60_000, minWeightPercent: 10, aggression: 1 },
    retryBudget: DEFAULT_RETRY_BUDGET
  }, 'v1')
}

/** mulberry32: a seeded PRNG, so that a failing history can be replayed. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const LANES = ['v1', 'v2', 'v3', '']

/** How a table routes, in a form two tables can be compared by (orders normalised). */
function view (table: ServiceTable, routes: Route[]): unknown {
  const members = [...table.members.values()].sort((a, b) => a.key.localeCompare(b.key)).map((m: Member) => ({
    key: m.key,
    lane: m.lane,
    attrs: m.attrs,
    budget: m.budget === null ? null : m.lane,
    warmFrom: m.warmFrom,
    startedAt: m.startedAt,
    ejectedUntil: m.ejectedUntil,
    instance: { weight: m.instance.weight, healthy: m.instance.healthy, enabled: m.instance.enabled, metadata: m.instance.metadata }
  }))
  const index = table.index
  const lanes = [...index.lanes.values()].sort((a, b) => a.name.localeCompare(b.name)).map((lane) => {
    const chances = lane.table?.chances() ?? []
    const items = (lane.table?.items ?? []).map((m, i) => ({ key: m.key, weight: lane.weights[i], chance: Number((chances[i] ?? 0).toFixed(9)) }))
    return {
      name: lane.name,
      members: lane.members.map((m) => m.key).sort(),
      items: items.sort((a, b) => a.key.localeCompare(b.key)),
      ejected: lane.ejected,
      warming: lane.warming,
      heldBack: lane.heldBack
    }
  })
  // Where each tag goes under each route: the lane of the pick, or the error's code.
  const picks = routes.flatMap((route) => [undefined, ...LANES.filter((l) => l !== ''), 'v9'].map((tag) => {
    try {
      return index.select(tag, route).lane
    } catch (err) {
      return (err as { code: string }).code
    }
  }))
  return { members, lanes, size: index.size, available: index.available, warming: index.warming, budgets: [...(table.budgets?.lanes.keys() ?? [])].sort(), picks }
}

t.test('a table fed change sets routes as one rebuilt from each whole list', async (t) => {
  const realNow = Date.now
  let now = realNow()
  Date.now = () => now
  t.teardown(() => {
    Date.now = realNow
  })

  for (let seed = 1; seed <= 12; seed++) {
    const random = prng(seed)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
    const discovery = new StaticDiscovery()
    const incremental = makeTable()
    const whole = makeTable()
    const changes: ServiceChange[] = []
    discovery.subscribe(SERVICE, (c) => changes.push(c))
    // Addresses 0..59; the list a step starts from, as plain specs.
    let list = new Map<number, StaticInstance>()
    const spec = (port: number): StaticInstance => ({
      ip: `10.0.0.${port % 7}`,
      port: 8000 + port,
      weight: pick([1, 1, 1, 2, 5, 0]),
      healthy: random() > 0.1,
      enabled: random() > 0.05,
      metadata: { version: pick(LANES), ...(random() < 0.2 ? { [STARTED_AT_METADATA]: String(now - Math.floor(random() * 90_000)) } : {}) }
    })
    for (let p = 0; p < 30; p++) if (random() < 0.7) list.set(p, spec(p))
    let stable = 'v1'
    const routes = (): Route[] => [{ stable, strict: false, weights: undefined }, { stable, strict: true, weights: undefined }]
    const apply = () => {
      discovery.set(SERVICE, [...list.values()].map((s) => ({ ...s, metadata: { ...s.metadata } })))
      const change = changes.shift()
      if (change === undefined) return
      incremental.update(change.instances, change)
      whole.update(change.instances)
    }
    apply()

    for (let step = 0; step < 150; step++) {
      now += Math.floor(random() * 8000)
      const next = new Map(list)
      const ops = random() < 0.1 ? 20 : 1 + Math.floor(random() * 3)
      for (let k = 0; k < ops; k++) {
        const port = Math.floor(random() * 60)
        const held = next.get(port)
        const what = random()
        if (held === undefined) next.set(port, spec(port))
        else if (what < 0.2) next.delete(port)
        else if (what < 0.35) next.set(port, { ...held, metadata: { ...held.metadata, version: pick(LANES) } })
        else if (what < 0.5) next.set(port, { ...held, weight: pick([0, 1, 2, 3, 5]) })
        else if (what < 0.6) next.set(port, { ...held, healthy: !(held.healthy ?? true) })
        else if (what < 0.65) next.set(port, { ...held, enabled: !(held.enabled ?? true) })
        else if (what < 0.75) next.set(port, { ...held, metadata: { ...held.metadata, [STARTED_AT_METADATA]: String(now - Math.floor(random() * 30_000)) } })
        else if (what < 0.82) next.set(port, { ...held, metadata: { ...held.metadata, [ROLE_METADATA]: pick(['consumer', 'consumer,http', '']) } })
        else next.set(port, { ...held, metadata: { ...held.metadata, note: String(step) } })
      }
      if (random() < 0.08) {
        // A lane retired: its instances leave or move to another lane (a canary that ended).
        const lane = pick(LANES)
        for (const [port, held] of next) {
          if ((held.metadata?.version ?? '') !== lane) continue
          if (random() < 0.5) next.delete(port)
          else next.set(port, { ...held, metadata: { ...held.metadata, version: pick(LANES.filter((l) => l !== lane)) } })
        }
      }
      list = next
      apply()
      const r = random()
      if (r < 0.05) {
        // Both tables eject the same member.
        const key = pick([...whole.members.keys()])
        const a = incremental.members.get(key)
        const b = whole.members.get(key)
        if (a !== undefined && b !== undefined) {
          for (let f = 0; f < 2; f++) {
            incremental.recordFailure(a, now)
            whole.recordFailure(b, now)
          }
        }
      } else if (r < 0.08) {
        stable = pick(['v1', 'v2', 'v3'])
      }
      incremental.routeFor({ stable }, { stable: 'v1', strict: false })
      whole.routeFor({ stable }, { stable: 'v1', strict: false })
      const a = view(incremental, routes())
      const b = view(whole, routes())
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        t.same(a, b, `seed ${seed}, step ${step}: the change-set table routes as the rebuilt one`)
        break
      }
    }
    t.ok(incremental.incrementalUpdates > 100, `seed ${seed}: ${incremental.incrementalUpdates} of 151 updates applied as change sets`)
    t.equal(whole.incrementalUpdates, 0)
    await Promise.all([incremental.close(), whole.close()])
  }
})

t.test('change sets that do not fit the table fall back to the whole list', async (t) => {
  const table = makeTable()
  t.teardown(() => table.close())
  const inst = (port: number, version = 'v1') => ({ ip: '10.0.0.1', port, weight: 1, healthy: true, enabled: true, metadata: { version } })
  const a = inst(1)
  const b = inst(2)
  // The first list is always applied whole.
  table.update([a, b], { added: [a, b], removed: [], changed: [] })
  t.equal(table.incrementalUpdates, 0)
  const c = inst(3, 'v2')
  // No change set, an incomplete one, an added instance already held, a removed one unknown,
  // counts that do not add up, a key named twice: each applied as the whole list, which wins.
  const cases: [string, Parameters<ServiceTable['update']>[1]][] = [
    ['no change set', undefined],
    ['no changed set', { added: [c], removed: [] }],
    ['added held', { added: [a, c], removed: [], changed: [] }],
    ['removed unknown', { added: [c], removed: [inst(9)], changed: [] }],
    ['counts', { added: [], removed: [], changed: [] }],
    ['named twice', { added: [c], removed: [], changed: [a, a] }]
  ]
  for (const [why, change] of cases) {
    table.update([a, b], { added: [], removed: [], changed: [] })
    const before = table.incrementalUpdates
    table.update([a, b, c], change)
    t.equal(table.incrementalUpdates, before, `${why}: not applied as a change set`)
    t.same([...table.lanes.keys()].sort(), ['v1', 'v2'], `${why}: the whole list applied`)
    t.equal(table.members.size, 3)
    table.update([a, b], { added: [], removed: [c], changed: [] })
    t.equal(table.members.size, 2, `${why}: then a fitting change set applies`)
  }
  // A change that touches no lane keeps the index.
  const index = table.index
  table.update([{ ...a, metadata: { version: 'v1', note: 'x' } }, b], { added: [], removed: [], changed: [{ ...a, metadata: { version: 'v1', note: 'x' } }] })
  t.equal(table.index, index, 'metadata routing does not read leaves the lanes as they were')
  t.equal(table.members.get('10.0.0.1#1#DEFAULT')?.instance.metadata.note, 'x', 'the member holds the new instance')
})

t.test('the dispatcher hands its table the change sets of the Discovery, and routes by them', async (t) => {
  const [a, b] = await Promise.all([startInstance(t, 'a', 'v1'), startInstance(t, 'b', 'v1')])
  const discovery = new StaticDiscovery()
  const at = (i: { port: number }, version: string, note = ''): StaticInstance => ({ ip: '127.0.0.1', port: i.port, metadata: { version, note } })
  discovery.set(SERVICE, [at(a, 'v1'), at(b, 'v1')])
  const tables = new Set<ServiceTable>()
  const update = ServiceTable.prototype.update
  ServiceTable.prototype.update = function (this: ServiceTable, ...args: Parameters<ServiceTable['update']>) {
    tables.add(this)
    return update.apply(this, args)
  }
  t.teardown(() => {
    ServiceTable.prototype.update = update
  })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => dispatcher.close())
  const id = async (tag?: string): Promise<string> => {
    const res = await (tag === undefined ? request(`http://${SERVICE}/x`, { dispatcher }) : runWithFlow({ tag, baggage: {} }, () => request(`http://${SERVICE}/x`, { dispatcher })))
    return ((await res.body.json()) as { id: string }).id
  }
  t.ok(['a', 'b'].includes(await id()))
  const [table] = [...tables]
  t.ok(table !== undefined, 'the dispatcher made a table')
  // A note routing does not read, then b moves to lane v2: both applied as change sets.
  discovery.set(SERVICE, [at(a, 'v1', 'x'), at(b, 'v1')])
  discovery.set(SERVICE, [at(a, 'v1', 'x'), at(b, 'v2')])
  t.equal(table?.incrementalUpdates, 2, 'both changes applied as change sets')
  for (let k = 0; k < 10; k++) t.equal(await id('v2'), 'b', 'lane v2 is b alone')
  for (let k = 0; k < 10; k++) t.equal(await id(), 'a', 'untagged traffic stays in v1')
})
