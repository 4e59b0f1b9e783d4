// Warm-up without the network: the curve, where a ramp starts (published start time, first sight,
// forged or skewed clocks, restarts on the same address) and how a LaneIndex applies it (the
// "more than half warming" guard, lane shares kept).
import t from 'tap'
import type { Instance } from '@flowtag/nacos'
import {
  DEFAULT_WARMUP,
  LaneIndex,
  STARTED_AT_METADATA,
  followWarmupState,
  freshWarmupState,
  warmupFactor,
  warmupRefreshMs,
  type WarmupState
} from '../src/lanes-entry.ts'

const policy = { windowMs: 10_000, minWeightPercent: 10, aggression: 1 }

const instance = (startedAt?: number | string): Instance => ({
  instanceId: 'i',
  ip: '10.0.0.1',
  port: 80,
  weight: 1,
  healthy: true,
  enabled: true,
  ephemeral: true,
  clusterName: 'DEFAULT',
  serviceName: 'svc',
  metadata: startedAt === undefined ? {} : { [STARTED_AT_METADATA]: String(startedAt) }
})

t.test("Envoy's curve: the floor, linear by default, aggression, full weight after the window", async (t) => {
  const from = 1_000_000
  t.equal(warmupFactor(policy, from, from), 0.1, 'starts at minWeightPercent')
  t.equal(warmupFactor(policy, from, from + 500), 0.1, 'the floor holds while the curve is below it')
  t.equal(warmupFactor(policy, from, from + 5000), 0.5, 'linear (aggression 1)')
  t.equal(warmupFactor(policy, from, from + 10_000), 1, 'full weight at the end of the window')
  t.equal(warmupFactor(policy, from, from + 60_000), 1)
  t.equal(warmupFactor(policy, -Infinity, from), 1, 'not warming')
  t.equal(warmupFactor({ ...policy, aggression: 2 }, from, from + 2500), 0.5, 'aggression 2: sqrt(t/window)')
  t.equal(warmupFactor({ ...policy, aggression: 0.5 }, from, from + 5000), 0.25, 'aggression 0.5: (t/window)^2')
  t.equal(warmupFactor(policy, from, from - 100), 0.1, 'a ramp that starts later than now sits at the floor')
  t.same(DEFAULT_WARMUP, { windowMs: 60_000, minWeightPercent: 10, aggression: 1 })
  t.equal(warmupRefreshMs(DEFAULT_WARMUP), 1000, 'weights follow the ramp every second')
  t.equal(warmupRefreshMs({ ...policy, windowMs: 2000 }), 100, 'finer for short windows')
  t.equal(warmupRefreshMs({ ...policy, windowMs: 1 }), 50)
})

t.test('where a ramp starts', async (t) => {
  const now = 5_000_000
  t.same(freshWarmupState(instance(), false, now), { startedAt: undefined, warmFrom: -Infinity }, 'in the first list, no published time: not warming')
  t.same(freshWarmupState(instance(now - 3000), false, now), { startedAt: String(now - 3000), warmFrom: now - 3000 }, 'in the first list: its published time')
  t.same(freshWarmupState(instance(now + 3_600_000), false, now).warmFrom, now, 'a time in the future (skew, forgery) counts as now: one window at most')
  t.equal(freshWarmupState(instance(), true, now).warmFrom, now, 'seen arriving, no published time: from first sight')
  t.equal(freshWarmupState(instance(0), true, now).warmFrom, now, 'seen arriving, a forged past time: from first sight')
  t.equal(freshWarmupState(instance(now - 3000), true, now).warmFrom, now, 'seen arriving: the later of the two')
  t.equal(freshWarmupState(instance(now + 3_600_000), true, now).warmFrom, now, 'seen arriving, a future time: now')
  t.equal(freshWarmupState(instance('soon'), false, now).warmFrom, -Infinity, 'not a number: ignored')
  t.equal(freshWarmupState(instance(''), false, now).warmFrom, -Infinity, 'empty: ignored')

  const s: WarmupState = freshWarmupState(instance(now - 600_000), false, now)
  t.equal(followWarmupState(s, instance(now - 600_000), now + 10), false, 'same start time: nothing changes')
  t.equal(s.warmFrom, now - 600_000)
  t.equal(followWarmupState(s, instance(now + 5), now + 20), true, 'a new start time on the same address: a restart')
  t.equal(s.warmFrom, now + 20, 'warmed up again from when it was seen')
  t.equal(followWarmupState(s, instance(), now + 30), true, 'the start time removed: treated as a restart too')
  t.equal(s.warmFrom, now + 30)
})

interface M { name: string; lane: string; weight: number; warmFrom: number }
const m = (name: string, lane: string, warmFrom = -Infinity, weight = 1): M => ({ name, lane, weight, warmFrom })
const index = (ms: M[], now: number) => new LaneIndex('svc', ms, (x) => ({ lane: x.lane, weight: x.weight, pickable: true, ejected: false, warmFrom: x.warmFrom }), { policy, now })

/** Share of each member in `n` picks. */
function shares (idx: LaneIndex<M>, tag: string | undefined, weights: Record<string, number> | undefined, n = 100_000): Record<string, number> {
  const counts: Record<string, number> = {}
  const route = { stable: 'v1', strict: false, weights }
  for (let i = 0; i < n; i++) {
    const name = idx.select(tag, route).name
    counts[name] = (counts[name] ?? 0) + 1
  }
  for (const k of Object.keys(counts)) counts[k] = counts[k]! / n
  return counts
}

t.test('a LaneIndex holds warming members back, unless more than half of their lane warms', async (t) => {
  const now = 1_000_000
  // Lane v1: three warm members and one at half of its window.
  const idx = index([m('a', 'v1'), m('b', 'v1'), m('c', 'v1'), m('d', 'v1', now - 5000)], now)
  const v1 = idx.lanes.get('v1')!
  t.same(v1.weights, [1, 1, 1, 0.5], 'weight × factor')
  t.equal(v1.warming, 1)
  t.equal(v1.heldBack, true)
  t.equal(idx.warming, 1)
  const s = shares(idx, undefined, undefined)
  t.ok(Math.abs(s.d! - 0.5 / 3.5) < 0.01, `d gets 1/7 of the lane (${s.d})`)

  // Half of the lane warming: still held back (TSF: more than half stops it).
  const half = index([m('a', 'v1'), m('b', 'v1', now)], now).lanes.get('v1')!
  t.same(half.weights, [1, 0.1])
  t.equal(half.heldBack, true)

  // More than half: none held back.
  const most = index([m('a', 'v1'), m('b', 'v1', now), m('c', 'v1', now - 1000)], now)
  t.same(most.lanes.get('v1')!.weights, [1, 1, 1], 'two of three warming: full weights')
  t.equal(most.lanes.get('v1')!.heldBack, false)
  t.equal(most.lanes.get('v1')!.warming, 2, 'they still count as warming (the index is rebuilt until they are warm)')
  t.equal(most.warming, 2)

  // A lane of one new instance (a fresh canary) gets its full share at once.
  const canary = index([m('a', 'v1'), m('b', 'v1'), m('n', 'v2', now)], now)
  t.same(canary.lanes.get('v2')!.weights, [1])
  t.equal(canary.lanes.get('v2')!.heldBack, false)

  // Weights of a member that is not pickable do not count in its lane's guard.
  const idx2 = new LaneIndex('svc', [m('a', 'v1'), m('b', 'v1', now), m('x', 'v1')], (x) => ({ lane: x.lane, weight: x.weight, pickable: x.name !== 'x', ejected: x.name === 'x', warmFrom: x.warmFrom }), { policy, now })
  t.same(idx2.lanes.get('v1')!.weights, [1, 0.1], 'one of two pickable warming: held back')

  // Without a warm-up policy nothing is held back.
  const off = new LaneIndex('svc', [m('a', 'v1'), m('b', 'v1', now)], (x) => ({ lane: x.lane, weight: x.weight, pickable: true, ejected: false, warmFrom: x.warmFrom }))
  t.same(off.lanes.get('v1')!.weights, [1, 1])
  t.equal(off.warming, 0)
})

t.test('warm-up never changes lane shares: a split keeps its weights, tagged requests their lane', async (t) => {
  const now = 1_000_000
  // v2 (the candidate, 10 % by rule) has a warming member held back; so does v1.
  const idx = index([m('a', 'v1'), m('b', 'v1'), m('c', 'v1', now), m('x', 'v2'), m('y', 'v2', now)], now)
  t.equal(idx.lanes.get('v2')!.heldBack, true)
  const s = shares(idx, undefined, { v1: 90, v2: 10 })
  const v2 = (s.x ?? 0) + (s.y ?? 0)
  t.ok(Math.abs(v2 - 0.1) < 0.01, `v2 keeps its 10 % (${v2.toFixed(3)})`)
  t.ok(Math.abs((s.y ?? 0) - 0.1 * (0.1 / 1.1)) < 0.005, `y gets its warm-up share of v2 (${s.y})`)
  const tagged = shares(idx, 'v2', undefined)
  t.same(Object.keys(tagged).sort(), ['x', 'y'], 'tagged v2 stays in v2')
  t.ok(Math.abs(tagged.y! - 0.1 / 1.1) < 0.01)

  // A candidate lane of new instances only gets its full 10 %.
  const fresh = index([m('a', 'v1'), m('b', 'v1'), m('x', 'v2', now), m('y', 'v2', now)], now)
  const f = shares(fresh, undefined, { v1: 90, v2: 10 })
  t.ok(Math.abs((f.x ?? 0) + (f.y ?? 0) - 0.1) < 0.01, 'a fresh candidate lane gets its full share')
})

t.test('retries skip tried members with the warm-up weights', async (t) => {
  const now = 1_000_000
  const ms = [m('a', 'v1'), m('b', 'v1'), m('c', 'v1', now)]
  const idx = index(ms, now)
  const counts: Record<string, number> = {}
  for (let i = 0; i < 20_000; i++) {
    const name = idx.select(undefined, { stable: 'v1', strict: false, weights: undefined }, [ms[0]!]).name
    counts[name] = (counts[name] ?? 0) + 1
  }
  t.notOk('a' in counts)
  t.ok(Math.abs(counts.c! / 20_000 - 0.1 / 1.1) < 0.02, `c: ${counts.c! / 20_000}`)
})
