// The sequential judge on readings the test builds: inconclusive is never a pass, a clear
// regression fails early and stays failed, the floors keep negligible excesses deployed, latency is
// judged on the share above stable's p90 bucket, and bad figures are left out.
import t from 'tap'
import { parseCanarySpec, type CanarySpecInput, type Figures, type Reading } from '../src/index.ts'
import { SequentialJudge, validFigures } from '../src/sequential-judge.ts'

const BOUNDS = [0.05, 0.1, 0.25, 2.5, Infinity]

/** Figures of requests by bucket (counts per bucket of BOUNDS, not cumulative), `errors` of them 5xx. */
function fig (perBucket: number[], errors = 0): Figures {
  let cum = 0
  const buckets = BOUNDS.map((le, i) => [le, (cum += perBucket[i] ?? 0)] as [number, number])
  return { requests: cum, serverErrors: errors, networkErrors: 0, seconds: cum * 0.05, buckets }
}

function plus (a: Figures, b: Figures): Figures {
  return {
    requests: a.requests + b.requests,
    serverErrors: a.serverErrors + b.serverErrors,
    networkErrors: a.networkErrors + b.networkErrors,
    seconds: a.seconds + b.seconds,
    buckets: a.buckets.map(([le, n], i) => [le, n + (b.buckets[i]?.[1] ?? 0)])
  }
}

/** Drives one judge: cumulative counters of one instance per lane, and the step's window. */
function harness (input: Partial<CanarySpecInput> = {}, history?: Figures) {
  const spec = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', ...input })
  const judge = new SequentialJudge()
  const zero = fig([])
  const total = { v1: history ?? zero, v2: zero }
  let at = 0
  const baseline: Reading = reading(total)
  let stepStart = { ...total }
  function reading (cum: { v1: Figures, v2: Figures }, extra: Array<[string, string, Figures | undefined]> = []): Reading {
    const instances: Reading['instances'] = new Map()
    for (const lane of ['v1', 'v2'] as const) instances.set(`${lane}:1`, { key: `${lane}:1`, lane, figures: cum[lane], metadata: {} })
    for (const [key, lane, figures] of extra) instances.set(key, { key, lane, figures, metadata: {} })
    return { at: at++, instances }
  }
  return {
    spec,
    judge,
    /** Add an interval's traffic and check. */
    interval (v2: Figures, v1: Figures, extra: Array<[string, string, Figures | undefined]> = []) {
      total.v1 = plus(total.v1, v1)
      total.v2 = plus(total.v2, v2)
      const window = new Map([['v1', minus(total.v1, stepStart.v1)], ['v2', minus(total.v2, stepStart.v2)]])
      return judge.check(spec, reading(total, extra), window, baseline)
    },
    /** A new step: its window starts now. */
    step () { stepStart = { ...total } }
  }
}

function minus (a: Figures, b: Figures): Figures {
  return { ...a, requests: a.requests - b.requests, serverErrors: a.serverErrors - b.serverErrors, buckets: a.buckets.map(([le, n], i) => [le, n - (b.buckets[i]?.[1] ?? 0)]) }
}

t.test('spec: defaults, and errors that name the field', async (t) => {
  const spec = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1' })
  t.equal(spec.judge, 'sequential')
  t.same(spec.sequential, {
    alpha: 0.01,
    errors: { minRatio: 1.5, minIncrease: 0.001, action: 'rollback' },
    latency: { quantile: 0.9, minRatio: 1.5, minIncrease: 0.02, action: 'rollback' }
  })
  t.throws(() => parseCanarySpec({ ...spec, judge: 'bayes' }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /"judge"/ })
  t.throws(() => parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', sequential: { alpha: 0 } }), { message: /"sequential\.alpha"/ })
  t.throws(() => parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', sequential: { errors: { minRatio: 1 } } }), { message: /"sequential\.errors\.minRatio"/ })
  t.throws(() => parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', sequential: { latency: { quantile: 1 } } }), { message: /"sequential\.latency\.quantile"/ })
})

t.test('healthy: inconclusive until the step has its minimum, then a pass that keeps its evidence', async (t) => {
  const h = harness({ minRequests: 100 })
  const first = h.interval(fig([60]), fig([1140]))
  t.equal(first.verdict, 'waiting', 'below minRequests: not a pass')
  t.match(first.reason, /inconclusive: 60 of 100 candidate requests in the window/)
  const second = h.interval(fig([60]), fig([1140]))
  t.equal(second.verdict, 'pass')
  t.match(second.reason, /no evidence against v2: errors e=1\.00 of 200/)
  h.step()
  t.equal(h.interval(fig([50]), fig([950])).verdict, 'waiting', 'the next step needs its own minimum')
  const ev = h.judge.evidence!
  t.equal(ev.intervals, 3)
  t.same(ev.errors.candidate, { events: 0, requests: 170 }, 'evidence kept across steps')
  t.equal(ev.errors.rejectAt, 200)
})

t.test('no stable traffic to compare with is inconclusive, not a pass', async (t) => {
  const h = harness({ minRequests: 20 })
  const j = h.interval(fig([500]), fig([]))
  t.equal(j.verdict, 'waiting')
  t.match(j.reason, /0 of 20 v1 requests to compare with/)
  // ... while a 100% step after stable had its traffic passes (stable is judged over the canary).
  h.interval(fig([100]), fig([400]))
  t.equal(h.interval(fig([500]), fig([])).verdict, 'pass')
})

t.test('a clear regression fails at once, below minRequests too, and stays failed', async (t) => {
  const h = harness({ minRequests: 1000 })
  const j = h.interval(fig([60], 12), fig([1140], 11))
  t.equal(j.verdict, 'fail', '12 failures of 60 against 1%: no need to wait for 1000 requests')
  t.match(j.breaches, [{ check: 'sequential.errorRate', action: 'rollback', threshold: 200 }])
  t.ok(j.breaches[0]!.value >= 200)
  t.match(j.reason, /errors: more frequent than stable's \(e-value [\d.e+]+ ≥ 200, ratio ≥ 1\.5 looked for\)/)
  const later = h.interval(fig([2000]), fig([2000], 200))
  t.equal(later.verdict, 'fail', 'a rejection stands: the martingale crossed once, that is the test')
  t.ok(h.judge.evidence!.errors.rejected)
})

t.test('the action of a rejection comes from the spec', async (t) => {
  const h = harness({ sequential: { errors: { action: 'pause' } } })
  t.match(h.interval(fig([60], 12), fig([1140], 11)).breaches, [{ check: 'sequential.errorRate', action: 'pause' }])
})

t.test('floors: an excess below minIncrease is not rolled back, however sure the test is', async (t) => {
  // 0.05% against 0.01% at high traffic: 5× stable's rate, but 0.04 points.
  const h = harness()
  let j
  for (let i = 0; i < 20; i++) j = h.interval(fig([100_000], 50), fig([1_900_000], 190))
  t.ok(h.judge.evidence!.errors.eValue > 1e6, 'the test is sure')
  t.equal(j!.verdict, 'pass', 'but 0.04 points is below minIncrease 0.1 points')
  const strict = harness({ sequential: { errors: { minIncrease: 0.0001 } } })
  t.equal(strict.interval(fig([100_000], 50), fig([1_900_000], 190)).verdict, 'fail', 'with a lower floor it is a rollback')
})

t.test('latency: the share above stable\'s p90 bucket, from its traffic before the canary', async (t) => {
  // stable: 80% under 50 ms, 15% under 100 ms, 5% above: its p90 bucket is 0.1
  const h = harness({ minRequests: 50 }, fig([8000, 1500, 400, 100]))
  const j = h.interval(fig([30, 10, 15, 5]), fig([800, 150, 40, 10]))
  t.equal(j.verdict, 'fail', '33% slower than 100 ms against 5%')
  t.match(j.breaches, [{ check: 'sequential.latency', action: 'rollback' }])
  t.equal(h.judge.evidence!.latency.thresholdSeconds, 0.1)
  t.match(j.reason, /20\/60 \(33\.3%\) vs 50\/1000 \(5\.0%\) slower than 100 ms/)
})

t.test('latency: without history, stable\'s first interval gives the bound for the next; an SLO bound applies from the start', async (t) => {
  const h = harness({ minRequests: 50 })
  t.equal(h.interval(fig([30, 10, 20]), fig([800, 150, 50])).verdict, 'pass', 'no bound yet: latency not judged in the first interval')
  t.equal(h.judge.evidence!.latency.thresholdSeconds, undefined)
  t.equal(h.interval(fig([30, 10, 20]), fig([800, 150, 50])).verdict, 'fail')
  // stable's p90 above the largest finite bound: no bound to count "slower" against
  const beyond = harness({ minRequests: 50 }, fig([800, 50, 0, 0, 150]))
  t.equal(beyond.interval(fig([60]), fig([800, 50, 0, 0, 150])).verdict, 'pass', 'latency not judged')
  t.equal(beyond.judge.evidence!.latency.thresholdSeconds, undefined)
  const slo = harness({ minRequests: 50, sequential: { latency: { thresholdSeconds: 0.2 } } })
  t.equal(slo.interval(fig([20, 20, 0, 20]), fig([800, 150, 40, 10])).verdict, 'fail', '33% above 250 ms against 1%')
  t.equal(slo.judge.evidence!.latency.thresholdSeconds, 0.25, 'the smallest bound at or above the SLO')
})

t.test('latency: a small excess is below the floor; histograms without a common bound are inconclusive', async (t) => {
  const h = harness({ minRequests: 50 }, fig([8000, 1500, 400, 100]))
  let j
  for (let i = 0; i < 30; i++) j = h.interval(fig([7850, 1500, 500, 150]), fig([152_000, 28_500, 7600, 1900]))
  t.ok(h.judge.evidence!.latency.eValue > 200, 'the test is sure: 6.5% against 5%')
  t.equal(j!.verdict, 'pass', 'but 1.5 points is below minIncrease 2 points')
  const other = harness({ minRequests: 50, sequential: { latency: { thresholdSeconds: 20 } } })
  const k = other.interval(fig([60]), fig([1000]))
  t.equal(k.verdict, 'waiting')
  t.match(k.reason, /no bucket at or above 20000 ms in both lanes' histograms/)
})

t.test('the absolute thresholds still apply once the step has its minimum', async (t) => {
  const h = harness({ minRequests: 50 })
  const j = h.interval(fig([0, 0, 0, 60]), fig([0, 0, 0, 1000]))
  t.match(j.breaches, [{ check: 'p99', action: 'rollback' }])
  t.match(j.reason, /p99 \d+ ms > 1 s/)
  const e = harness({ minRequests: 50, sequential: { errors: { minRatio: 100 } } }).interval(fig([60], 9), fig([60], 9))
  t.match(e.breaches, [{ check: 'serverErrorRate', action: 'pause' }])
  t.match(e.reason, /serverErrorRate 15\.0% > 10\.0%/)
})

t.test('invalid figures are left out and make the check inconclusive; restarts and new instances are counted right', async (t) => {
  const bad: Array<[string, Figures]> = [
    ['counts that are not non-negative integers', { ...fig([10]), serverErrors: Number.NaN }],
    ['more errors than requests', fig([10], 11)],
    ['requests without histogram buckets', { ...fig([10]), buckets: [] }],
    ['histogram buckets that are not cumulative counts', { ...fig([10]), buckets: [[0.1, 5], [1, 3], [Infinity, 10]] }],
    ['a +Inf bucket that does not count every request', { ...fig([10]), buckets: [[0.1, 5], [Infinity, 9]] }]
  ]
  for (const [why, f] of bad) t.equal(validFigures(f), why)
  t.equal(validFigures(fig([])), undefined, 'no requests, no buckets: fine')

  const h = harness({ minRequests: 50 })
  h.interval(fig([100]), fig([1000]))
  const j = h.interval(fig([100]), fig([1000]), [['v2:2', 'v2', { ...fig([10]), requests: Number.NaN }]])
  t.equal(j.verdict, 'waiting')
  t.match(j.reason, /invalid figures from 1 instance\(s\)/)
  t.equal(h.judge.evidence!.errors.candidate.requests, 200, 'the valid instances are still counted')
  // an instance seen for the first time adds nothing yet; from its second reading, its difference
  h.interval(fig([100]), fig([1000]), [['v2:3', 'v2', fig([5000], 4000)]])
  t.equal(h.judge.evidence!.errors.candidate.requests, 300, 'its history is not this interval\'s')
  h.interval(fig([100]), fig([1000]), [['v2:3', 'v2', fig([5100], 4000)]])
  t.equal(h.judge.evidence!.errors.candidate.requests, 500)
  // restarted: its counter went down, so it counts from zero
  const restarted = h.interval(fig([100]), fig([1000]), [['v2:3', 'v2', fig([30])]])
  t.equal(h.judge.evidence!.errors.candidate.requests, 630)
  t.equal(restarted.verdict, 'pass')
  // a failed scrape (no figures) is skipped; the interval after it spans both
  h.interval(fig([100]), fig([1000]), [['v2:3', 'v2', undefined]])
  h.interval(fig([100]), fig([1000]), [['v2:3', 'v2', fig([90])]])
  t.equal(h.judge.evidence!.errors.candidate.requests, 890)
})

t.test('a window with invalid lane figures is inconclusive, and at the first check it is no interval', async (t) => {
  const spec = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', minRequests: 10 })
  const judge = new SequentialJudge()
  t.equal(judge.evidence, undefined, 'no evidence before the first check')
  const reading: Reading = { at: 1, instances: new Map() }
  const j = judge.check(spec, reading, new Map([['v2', fig([20], 30)], ['v1', fig([100])]]))
  t.equal(j.verdict, 'waiting', 'not a serverErrorRate of 150%: no figures at all')
  t.match(j.reason, /invalid figures in the step's window: more errors than requests; invalid figures in the interval: more errors than requests/)
  t.equal(j.errorRateHigh, false)
  t.equal(judge.evidence!.intervals, 0)
})

t.test('a spec saved before the sequential judge existed gets its defaults', async (t) => {
  const spec = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', minRequests: 10 })
  const old = { ...spec, sequential: undefined } as unknown as typeof spec
  const judge = new SequentialJudge()
  const reading: Reading = { at: 1, instances: new Map() }
  t.equal(judge.check(old, reading, new Map([['v2', fig([20])], ['v1', fig([100])]])).verdict, 'pass')
  t.equal(judge.evidence!.errors.rejectAt, 200)
})

t.test('failed calls only the callers saw count in the error test, once each, per window', async (t) => {
  // The candidate counts no error of its own (it dies before it can); its callers saw 12 calls fail.
  const spec = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', minRequests: 50 })
  const unseen = (n: number) => new Map([['v2', n], ['v1', 0]])
  const r = (k: number): Reading => ({
    at: k,
    instances: new Map([
      ['v1:1', { key: 'v1:1', lane: 'v1', figures: fig([1140 * k], 11 * k), metadata: {} }],
      ['v2:1', { key: 'v2:1', lane: 'v2', figures: fig([60 * k]), metadata: {} }]
    ])
  })
  const w = (k: number) => new Map([['v1', fig([1140 * k], 11 * k)], ['v2', fig([60 * k])]])
  t.equal(new SequentialJudge().check(spec, r(1), w(1), r(0)).verdict, 'pass', 'without the callers\' view there is nothing to see')
  const judge = new SequentialJudge()
  const win = {}
  t.equal(judge.check(spec, r(1), w(1), r(0), { window: win, unseen: unseen(12) }).verdict, 'fail', '12 failed of 72 calls against 1%: rolled back')
  t.same(judge.evidence!.errors.candidate, { events: 12, requests: 72 }, 'counted as failed requests')
  judge.check(spec, r(2), w(2), undefined, { window: win, unseen: unseen(12) })
  t.same(judge.evidence!.errors.candidate, { events: 12, requests: 132 }, 'the same cumulative figure is not counted twice')
  judge.check(spec, r(3), w(3), undefined, { window: {}, unseen: unseen(2) })
  t.same(judge.evidence!.errors.candidate, { events: 14, requests: 194 }, 'a new window counts from zero')
})
