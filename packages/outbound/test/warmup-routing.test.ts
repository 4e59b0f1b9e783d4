// Warm-up against real instance processes on loopback: a new instance's share of requests ramps
// over the window, a lane with more than half of its instances warming holds none back (a fresh
// canary gets its whole lane share), a restart on the same address warms up again, and forged
// or skewed start times cost one window at most. Shares are counted over hundreds of requests
// with wide tolerances; nothing depends on how fast the machine answers.
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery, type StaticInstance } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { waitFor } from '@flowtag/test-kit'
import { FlowTagDispatcher, STARTED_AT_METADATA, type OutboundOptions } from '../src/index.ts'
import { load, startInstance, type Instance } from './fixtures/instances.ts'

async function id (dispatcher: FlowTagDispatcher, service: string): Promise<string> {
  const res = await request(`http://${service}/x`, { dispatcher })
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  return ((await res.body.json()) as { id: string }).id
}

function shares (ids: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const i of ids) out[i] = (out[i] ?? 0) + 1 / ids.length
  return out
}

const at = (i: Instance, version: string, startedAt?: number | string): StaticInstance => ({
  ip: '127.0.0.1',
  port: i.port,
  metadata: { version, ...(startedAt === undefined ? {} : { [STARTED_AT_METADATA]: String(startedAt) }) }
})

t.test('warm-up', async (t) => {
  const [a, b, c, x] = await Promise.all([startInstance(t, 'a', 'v1'), startInstance(t, 'b', 'v1'), startInstance(t, 'c', 'v1'), startInstance(t, 'x', 'v2')])
  const discovery = new StaticDiscovery()
  const make = (opts: Partial<OutboundOptions> = {}) => {
    const d = new FlowTagDispatcher({ discovery, stableLane: 'v1', ...opts })
    t.teardown(() => d.close())
    return d
  }

  t.test("a new instance's share ramps up over the window", async (t) => {
    const windowMs = 9000
    discovery.set('ramp', [at(a, 'v1'), at(b, 'v1')])
    const d = make({ warmup: { windowMs } })
    await id(d, 'ramp') // the first list: a and b are not warming
    t.match(d.snapshot('ramp')?.lanes.v1, { warming: 0, heldBack: false })
    const t0 = Date.now()
    // c arrives; its published start time (a second ago) is earlier than first sight, which wins.
    discovery.set('ramp', [at(a, 'v1'), at(b, 'v1'), at(c, 'v1', t0 - 1000)])
    t.match(d.snapshot('ramp')?.lanes.v1, { instances: 3, warming: 1, heldBack: true })
    const early: string[] = []
    const middle: string[] = []
    const late: string[] = []
    // Until the window is over and the late phase has enough requests to count.
    while (Date.now() - t0 < windowMs + 1000 || late.length < 600) {
      await load(40, 8, async () => {
        const sentAt = Date.now() - t0
        const who = await id(d, 'ramp')
        // By elapsed time at sending; weights follow the ramp every windowMs / 20.
        const phase = sentAt < windowMs / 3 ? early : sentAt < windowMs + 500 ? (sentAt > windowMs ? null : middle) : late
        phase?.push(who)
      })
    }
    const s = { early: shares(early).c ?? 0, middle: shares(middle).c ?? 0, late: shares(late).c ?? 0 }
    t.comment(`c's share: first third of the window ${s.early.toFixed(3)} (${early.length} requests, expected ≤ 0.14), rest of the window ${s.middle.toFixed(3)} (${middle.length}), after ${s.late.toFixed(3)} (${late.length}, expected 0.333)`)
    t.ok(early.length >= 100, `enough requests in the first third of the window (${early.length})`)
    t.ok(s.early < 0.25, 'held back at first: at most 1/3 of its weight in the first third of the window (≤ 14 % of requests)')
    t.ok(s.late > 0.25, 'its full share (1/3) once warm')
    t.ok(s.early < s.late, 'the share grew')
    t.match(d.snapshot('ramp')?.lanes.v1, { warming: 0, heldBack: false })
  })

  t.test('more than half of a lane warming: none held back; a fresh canary lane gets its whole share', async (t) => {
    discovery.set('most', [at(a, 'v1')])
    const d = make()
    await id(d, 'most')
    discovery.set('most', [at(a, 'v1'), at(b, 'v1'), at(c, 'v1')])
    t.match(d.snapshot('most')?.lanes.v1, { warming: 2, heldBack: false }, 'two of three warming')
    const s = shares(await load(600, 8, () => id(d, 'most')))
    t.ok((s.b ?? 0) + (s.c ?? 0) > 0.55, `b and c take their full 2/3 at once (${((s.b ?? 0) + (s.c ?? 0)).toFixed(3)})`)

    // A candidate lane of one new instance, 10 % by rule, next to a stable lane with a warming instance.
    discovery.set('split', [at(a, 'v1'), at(b, 'v1')])
    const split = make({ lanes: () => ({ stable: 'v1', weights: { v1: 90, v2: 10 } }) })
    await id(split, 'split')
    discovery.set('split', [at(a, 'v1'), at(b, 'v1'), at(c, 'v1'), at(x, 'v2')])
    const snap = split.snapshot('split')
    t.match(snap?.lanes.v2, { instances: 1, warming: 1, heldBack: false }, 'the canary lane: all new, none held back')
    t.match(snap?.lanes.v1, { instances: 3, warming: 1, heldBack: true }, 'the stable lane: one new of three, held back')
    const n = 2000
    const ss = shares(await load(n, 8, () => id(split, 'split')))
    t.ok(Math.abs((ss.x ?? 0) - 0.1) < 0.03, `the canary keeps its 10 % (${(ss.x ?? 0).toFixed(3)}): warm-up never cuts a lane's share`)
    t.ok((ss.c ?? 0) < 0.2, `c is held back within v1 (${(ss.c ?? 0).toFixed(3)}; full would be 0.3)`)
    const tagged = await runWithFlow({ tag: 'v2', baggage: {} }, () => load(50, 5, () => id(split, 'split')))
    t.same([...new Set(tagged)], ['x'], 'tagged v2 requests all go to the new canary instance')
  })

  t.test('a restart on the same address warms up again', async (t) => {
    const longAgo = Date.now() - 3_600_000
    discovery.set('restart', [at(a, 'v1', longAgo), at(b, 'v1', longAgo)])
    const d = make()
    await id(d, 'restart')
    t.match(d.snapshot('restart')?.lanes.v1, { warming: 0 }, 'started an hour ago: warm')

    // b restarts on its port and publishes its new start time; the list never lost it. (b is gone for the tests below.)
    await b.kill()
    const b2 = await startInstance(t, 'b2', 'v1', b.port)
    discovery.set('restart', [at(a, 'v1', longAgo), at(b2, 'v1', Date.now())])
    t.match(d.snapshot('restart')?.lanes.v1, { warming: 1, heldBack: true })
    const s = shares(await load(400, 8, () => id(d, 'restart')))
    t.ok((s.b2 ?? 0) < 0.25, `the restarted instance is held back (${(s.b2 ?? 0).toFixed(3)}; full would be 0.5)`)

    // Gone from the list and back, with the same start time: seen arriving again.
    const c2 = { port: c.port } as Instance
    discovery.set('restart2', [at(a, 'v1', longAgo), at(c2, 'v1', longAgo)])
    const d2 = make()
    await id(d2, 'restart2')
    t.match(d2.snapshot('restart2')?.lanes.v1, { warming: 0 })
    discovery.set('restart2', [at(a, 'v1', longAgo)])
    discovery.set('restart2', [at(a, 'v1', longAgo), at(c2, 'v1', longAgo)])
    t.match(d2.snapshot('restart2')?.lanes.v1, { warming: 1, heldBack: true }, 'an instance that left and came back warms up again')
  })

  t.test('forged or skewed start times', async (t) => {
    // A forged past time on an instance seen arriving: first sight wins, it warms up.
    discovery.set('past', [at(a, 'v1')])
    const d = make()
    await id(d, 'past')
    discovery.set('past', [at(a, 'v1'), at(c, 'v1', 0)])
    t.match(d.snapshot('past')?.lanes.v1, { warming: 1, heldBack: true })
    const s = shares(await load(400, 8, () => id(d, 'past')))
    t.ok((s.c ?? 0) < 0.25, `started "in 1970", still held back (${(s.c ?? 0).toFixed(3)})`)

    // A time a year ahead (a skewed clock, or a forgery) costs one window, not a year.
    const windowMs = 2000
    discovery.set('future', [at(a, 'v1')])
    const f = make({ warmup: { windowMs } })
    await id(f, 'future')
    discovery.set('future', [at(a, 'v1'), at(c, 'v1', Date.now() + 365 * 86_400_000)])
    t.match(f.snapshot('future')?.lanes.v1, { warming: 1, heldBack: true })
    await waitFor('the instance from the future to be warm', () => f.snapshot('future')?.lanes.v1?.warming === 0, 20_000)
    const fs = shares(await load(600, 8, () => id(f, 'future')))
    t.ok((fs.c ?? 0) > 0.35, `full share after one window (${(fs.c ?? 0).toFixed(3)}; expected 0.5)`)

    // The same in a caller's first list: it has no sight of its own, the time is clamped to now.
    discovery.set('future2', [at(a, 'v1'), at(c, 'v1', Date.now() + 365 * 86_400_000)])
    const f2 = make({ warmup: { windowMs } })
    await id(f2, 'future2')
    t.match(f2.snapshot('future2')?.lanes.v1, { warming: 1, heldBack: true })
    await waitFor('warm after one window', () => f2.snapshot('future2')?.lanes.v1?.warming === 0, 20_000)

    // In a caller's first list, an honest recent start time is trusted: the caller joins the ramp.
    discovery.set('recent', [at(a, 'v1', Date.now() - 3_600_000), at(c, 'v1', Date.now() - 1000)])
    const r = make()
    await id(r, 'recent')
    t.match(r.snapshot('recent')?.lanes.v1, { warming: 1, heldBack: true }, 'c started a second ago: warming')
  })

  t.test('on by default, off with warmup: false, per service', async (t) => {
    discovery.set('svc-a', [at(a, 'v1')])
    discovery.set('svc-b', [at(a, 'v1')])
    const on = make()
    const off = make({ warmup: false })
    const mixed = make({ services: { 'svc-b': { warmup: false } } })
    for (const d of [on, off, mixed]) for (const svc of ['svc-a', 'svc-b']) await id(d, svc)
    discovery.set('svc-a', [at(a, 'v1'), at(c, 'v1')])
    discovery.set('svc-b', [at(a, 'v1'), at(c, 'v1')])
    t.match(on.snapshot('svc-a')?.lanes.v1, { warming: 1, heldBack: true }, 'on by default')
    t.match(off.snapshot('svc-a')?.lanes.v1, { warming: 0, heldBack: false }, 'warmup: false')
    t.match(mixed.snapshot('svc-a')?.lanes.v1, { warming: 1 }, 'on for the services not listed')
    t.match(mixed.snapshot('svc-b')?.lanes.v1, { warming: 0 }, 'services.<name>.warmup: false')
    const s = shares(await load(400, 8, () => id(off, 'svc-a')))
    t.ok((s.c ?? 0) > 0.35, `with warm-up off, a new instance gets its share at once (${(s.c ?? 0).toFixed(3)})`)
  })
})
