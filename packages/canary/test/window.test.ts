// The step's window (WindowTracker) reading by reading: restarts seen by a counter reset, by a new
// process start time even when the counters grew past their old values, and by an instance that
// left discovery and came back; unread instances make the window partial instead of being left
// out; the callers' failed calls that the lane never counted are its network errors.
import t from 'tap'
import { judge, parseCanarySpec, WindowTracker, type CallerReading, type Figures, type InstanceReading, type Reading } from '../src/index.ts'

const figures = (requests: number, serverErrors = 0): Figures => ({ requests, serverErrors, networkErrors: 0, seconds: requests * 0.02, buckets: [[0.05, requests], [Infinity, requests]] })
const OPENED = 1_800_000_000_000 // ms
const START = OPENED / 1000 - 3600 // an hour before the window

/** `startTime` null: the instance does not export one. */
function inst (key: string, lane: string, f: Figures | undefined, startTime: number | null = START): InstanceReading {
  return { key, lane, figures: f, metadata: {}, ...(f === undefined ? { error: 'connect ECONNREFUSED' } : {}), ...(startTime === null ? {} : { startTime }) }
}

function reading (at: number, instances: InstanceReading[], callers?: CallerReading[]): Reading {
  return { at: OPENED + at, instances: new Map(instances.map((i) => [i.key, i])), ...(callers === undefined ? {} : { callers: new Map(callers.map((c) => [c.key, c])) }) }
}

const spec = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', minRequests: 20 })

t.test('whole windows: the differences since the opening, per lane', async (t) => {
  const w = new WindowTracker(reading(0, [inst('a', 'v1', figures(1000)), inst('b', 'v2', figures(500, 10))]))
  w.add(reading(1000, [inst('a', 'v1', figures(1100)), inst('b', 'v2', figures(530, 12))]))
  w.add(reading(2000, [inst('a', 'v1', figures(1200)), inst('b', 'v2', figures(560, 13)), inst('c', 'v2', figures(5), OPENED / 1000 + 1)]))
  const v2 = w.lane('v2')
  t.equal(v2.requests, 65, '60 of b, and c\'s 5: it started in the window')
  t.equal(v2.serverErrorRate, 3 / 65)
  t.equal(v2.restarts, 0)
  t.same(v2.partial, [])
  t.equal(w.lane('v1').requests, 200)
  t.equal(judge(spec, v2, w.lane('v1')).verdict, 'pass')
})

t.test('a restart with the counters grown past their old values is seen by the start time', async (t) => {
  const w = new WindowTracker(reading(0, [inst('a', 'v1', figures(100)), inst('b', 'v2', figures(30))]))
  // b died after 29 more requests (its errors never counted), came back and served 40: more than before.
  w.add(reading(1000, [inst('a', 'v1', figures(200)), inst('b', 'v2', figures(59))]))
  w.add(reading(2000, [inst('a', 'v1', figures(300)), inst('b', 'v2', figures(40), START + 3601)]))
  const v2 = w.lane('v2')
  t.equal(v2.restarts, 1, 'one restart')
  t.equal(v2.requests, 29 + 40, 'the old life up to its last reading and the whole new life')
  t.same(v2.partial, ['b restarted'])
  const j = judge(spec, v2, w.lane('v1'))
  t.equal(j.verdict, 'fail', 'restarted more than stable: a failed check, not a pass on the latest life')
  t.match(j.breaches, [{ check: 'restarts', value: 1, threshold: 0, action: 'pause' }])
  t.match(j.reason, /^restarts 1 > 0 \(candidate 1, stable 0 in the window: b restarted; candidate 69 req/)
})

t.test('a counter that went down is a restart, even without a start time', async (t) => {
  const w = new WindowTracker(reading(0, [inst('b', 'v2', figures(100), null)]))
  w.add(reading(1000, [inst('b', 'v2', figures(150), null)]))
  w.add(reading(2000, [inst('b', 'v2', figures(20), null)]))
  t.equal(w.lane('v2').restarts, 1)
  t.equal(w.lane('v2').requests, 70)
})

t.test('gone from discovery: a restart while away; back with the same start time it was not one', async (t) => {
  const w = new WindowTracker(reading(0, [inst('a', 'v1', figures(100)), inst('b', 'v2', figures(100))]))
  w.add(reading(1000, [inst('a', 'v1', figures(200))]))
  t.equal(w.lane('v2').restarts, 1, 'a listed instance that vanished counts while away')
  t.same(w.lane('v2').partial, ['b is no longer listed'])
  t.notOk(w.reopenable('v2'), 'the window cannot start again without it')
  t.equal(judge(spec, w.lane('v2'), w.lane('v1')).verdict, 'fail')
  w.add(reading(2000, [inst('a', 'v1', figures(300)), inst('b', 'v2', figures(160))]))
  t.equal(w.lane('v2').restarts, 0, 'the same process came back (a registration blip): no restart')
  t.equal(w.lane('v2').requests, 60, 'its counts carried on')
  t.same(w.lane('v2').partial, [])

  const unknown = new WindowTracker(reading(0, [inst('b', 'v2', figures(100), null)]))
  unknown.add(reading(1000, []))
  unknown.add(reading(2000, [inst('b', 'v2', figures(160), null)]))
  t.equal(unknown.lane('v2').restarts, 1, 'vanished and came back, and nothing says it is the same process: a restart')
})

t.test('an instance that could not be read makes the window partial: waiting, not left out', async (t) => {
  const w = new WindowTracker(reading(0, [inst('a', 'v1', figures(100)), inst('b', 'v2', figures(100)), inst('c', 'v2', figures(100))]))
  w.add(reading(1000, [inst('a', 'v1', figures(300)), inst('b', 'v2', undefined), inst('c', 'v2', figures(200))]))
  const v2 = w.lane('v2')
  t.same(v2.partial, ['b could not be read (connect ECONNREFUSED)'])
  t.equal(v2.restarts, 0, 'not read is not a restart')
  const j = judge(spec, v2, w.lane('v1'))
  t.equal(j.verdict, 'waiting', 'c\'s 100 requests alone are not the candidate\'s window')
  t.match(j.reason, /the candidate's figures do not cover the window: b could not be read/)
  t.notOk(w.reopenable('v2'))
  w.add(reading(2000, [inst('a', 'v1', figures(400)), inst('b', 'v2', figures(250)), inst('c', 'v2', figures(300))]))
  t.equal(w.lane('v2').requests, 350, 'read again: b\'s counts since the opening, nothing lost')
  t.same(w.lane('v2').partial, [])

  // Unread at the opening: its zero is unknown, its first figures are not the window's.
  const late = new WindowTracker(reading(0, [inst('b', 'v2', undefined)]))
  late.add(reading(1000, [inst('b', 'v2', figures(5000))]))
  t.equal(late.lane('v2').requests, 0)
  t.same(late.lane('v2').partial, ['b was first read after the window opened'])
  t.ok(late.reopenable('v2'), 'read now: the window can start again here')
  // Listed first after the opening, started an hour before it: same.
  const joined = new WindowTracker(reading(0, []))
  joined.add(reading(1000, [inst('b', 'v2', figures(5000))]))
  t.same(joined.lane('v2').partial, ['b was first read after the window opened'])
})

t.test('restarts compared with stable: as many as stable is no failure, but no pass on partial figures either', async (t) => {
  const w = new WindowTracker(reading(0, [inst('a', 'v1', figures(100)), inst('b', 'v2', figures(100))]))
  w.add(reading(1000, [inst('a', 'v1', figures(10), START + 3601), inst('b', 'v2', figures(10), START + 3601)]))
  const j = judge(spec, w.lane('v2'), w.lane('v1'))
  t.equal(j.verdict, 'waiting')
  t.match(j.reason, /b restarted/)
  t.ok(w.reopenable('v2'))
  const lenient = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', thresholds: { restarts: { maxIncrease: 2, action: 'rollback' } } })
  const solo = new WindowTracker(reading(0, [inst('b', 'v2', figures(100))]))
  solo.add(reading(1000, [inst('b', 'v2', figures(1), START + 3601)]))
  t.equal(judge(lenient, solo.lane('v2'), solo.lane('v1')).verdict, 'waiting', 'within maxIncrease: not failed, still not passed')
  solo.add(reading(2000, [inst('b', 'v2', figures(1), START + 3602)]))
  solo.add(reading(3000, [inst('b', 'v2', figures(1), START + 3603)]))
  t.match(judge(lenient, solo.lane('v2'), solo.lane('v1')).breaches, [{ check: 'restarts', value: 3, threshold: 2, action: 'rollback' }])
})

t.test('callers\' failed calls the lane never counted are its network errors', async (t) => {
  const caller = (calls: Record<string, [number, number]>, startTime: number | null = START, key = 'edge@1'): CallerReading => ({
    key, service: 'edge', calls: new Map(Object.entries(calls).map(([lane, [requests, failures]]) => [lane, { requests, failures }])), ...(startTime === null ? {} : { startTime })
  })
  const w = new WindowTracker(reading(0, [inst('a', 'v1', figures(100)), inst('b', 'v2', figures(100))], [caller({ v1: [100, 0], v2: [100, 7] })]))
  w.add(reading(1000, [inst('a', 'v1', figures(200)), inst('b', 'v2', figures(180))], [caller({ v1: [200, 0], v2: [200, 27] })]))
  const v2 = w.lane('v2')
  t.equal(v2.callerFailures, 20, 'the failures since the opening, not the 7 before it')
  t.equal(v2.requests, 100, '80 counted by the lane, 20 it never saw')
  t.equal(v2.networkErrors, 20)
  t.equal(v2.errorRate, 0.2)
  t.equal(judge(spec, v2, w.lane('v1')).verdict, 'fail', 'a candidate that died before counting its errors still fails')

  // The lane's own aborted count already holds what the callers saw: not counted twice.
  const both = new WindowTracker(reading(0, [inst('b', 'v2', figures(0))], [caller({ v2: [0, 0] })]))
  both.add(reading(1000, [inst('b', 'v2', { ...figures(100), networkErrors: 5 })], [caller({ v2: [100, 5] })]))
  t.equal(both.lane('v2').networkErrors, 5)
  t.equal(both.lane('v2').requests, 100)

  // A caller that restarted counts its new life; one first read after the opening (started an hour
  // before) starts at its first reading; one started in the window counts from zero; an unread one waits.
  const c = new WindowTracker(reading(0, [], [caller({ v2: [100, 50] }), { key: 'edge@2', service: 'edge', calls: undefined, error: 'timeout' }]))
  c.add(reading(1000, [], [
    caller({ v2: [10, 3] }, START + 3601),
    caller({ v2: [500, 90] }, START, 'edge@2'),
    caller({ v2: [40, 4] }, OPENED / 1000 + 0.5, 'edge@3'),
    caller({ v2: [900, 80] }, START, 'edge@4'),
    { key: 'edge@5', service: 'edge', calls: undefined }
  ]))
  c.add(reading(2000, [], [caller({ v2: [20, 4] }, START + 3601), caller({ v2: [510, 91] }, START, 'edge@2'), caller({ v2: [40, 4] }, OPENED / 1000 + 0.5, 'edge@3'), caller({ v2: [900, 81] }, START, 'edge@4')]))
  t.equal(c.lane('v2').callerFailures, 3 + 1 + 1 + 4 + 1, 'edge@1: 3 then 1 after its restart; edge@2: 1; edge@3: 4; edge@4: 1')
})
