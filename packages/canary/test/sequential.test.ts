// The count test of the sequential judge: its per-interval factor is an e-value under "no worse"
// (checked exactly, by summing over the distribution), it grows with the candidate's failures, and
// streams of equal rates (A/A) stay below 1/alpha in all but a share ≤ alpha of seeds, however the
// rates and the traffic split move.
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { logBinomialPmf, logGamma, Rng, seedOf } from '../bench/random.ts'
import { CountRatioTest, validCounts } from '../src/sequential.ts'

/** The test's e-value after one interval, at a single ratio (the factor L(ρ) of one grid point). */
function factor (ratio: number, xc: number, nc: number, xs: number, ns: number): number {
  const test = new CountRatioTest({ minRatio: ratio, maxRatio: ratio, points: 1 })
  test.observe({ events: xc, requests: nc }, { events: xs, requests: ns })
  return test.eValue
}

/** Record a property as one assertion, with fast-check's report (counterexample, seed) when it fails. */
function holds<T> (t: Test, property: fc.IProperty<T>, params: fc.Parameters<T>, what: string): void {
  const run = fc.check(property, params)
  t.notOk(run.failed, run.failed ? `${what}: ${fc.defaultReportMessage(run)}` : `${what}: held in ${run.numRuns} runs`)
}

function logChoose (n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1)
}

t.test('options and counts are checked', async (t) => {
  t.throws(() => new CountRatioTest({ minRatio: 1 }), RangeError)
  t.throws(() => new CountRatioTest({ minRatio: 2, maxRatio: 1.5 }), RangeError)
  t.throws(() => new CountRatioTest({ minRatio: 1.5, points: 0 }), RangeError)
  t.same(new CountRatioTest({ minRatio: 2, maxRatio: 8, points: 3 }).ratios.map((r) => Math.round(r * 1e9) / 1e9), [2, 4, 8], 'log-spaced grid')
  t.notOk(validCounts({ events: 3, requests: 2 }), 'more events than requests')
  t.notOk(validCounts({ events: Number.NaN, requests: 2 }))
  t.notOk(validCounts({ events: 1.5, requests: 2 }))
  t.notOk(validCounts({ events: -1, requests: 2 }))
  const test = new CountRatioTest({ minRatio: 1.5 })
  t.throws(() => test.observe({ events: 5, requests: 4 }, { events: 0, requests: 10 }), RangeError)
  test.observe({ events: 0, requests: 0 }, { events: 3, requests: 10 })
  test.observe({ events: 0, requests: 10 }, { events: 0, requests: 10 })
  test.observe({ events: 2, requests: 10 }, { events: 0, requests: 0 })
  t.equal(test.intervals, 0, 'an interval with no request on a side, or no event, says nothing')
  t.equal(test.eValue, 1)
})

t.test('each interval\'s factor has mean 1 under the binomial, and at most 1 under the hypergeometric or a better candidate', async (t) => {
  holds(t, fc.property(
    fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 1.01, max: 100, noNaN: true }), fc.double({ min: 0.05, max: 1, noNaN: true }),
    (nc, ns, mShare, ratio, better) => {
      const m = Math.max(1, Math.round(mShare * (nc + ns)))
      const s = nc / (nc + ns)
      let binomial = 0
      let hyper = 0
      let betterHyper = 0
      const weights: number[] = []
      for (let x = Math.max(0, m - ns); x <= Math.min(m, nc); x++) {
        const f = factor(ratio, x, nc, m - x, ns)
        hyper += Math.exp(logChoose(nc, x) + logChoose(ns, m - x) - logChoose(nc + ns, m)) * f
        // Fisher's noncentral hypergeometric: the candidate's odds are `better` × stable's
        weights.push(logChoose(nc, x) + logChoose(ns, m - x) + x * Math.log(better))
      }
      // Poisson counts: x_c given m is Binomial(m, s), not bounded by the requests (scaled up here)
      for (let x = 0; x <= m; x++) binomial += Math.exp(logBinomialPmf(x, m, s)) * factor(ratio, x, 1000 * nc, m - x, 1000 * ns)
      const top = Math.max(...weights)
      const z = weights.reduce((a, w) => a + Math.exp(w - top), 0)
      weights.forEach((w, i) => {
        const x = Math.max(0, m - ns) + i
        betterHyper += (Math.exp(w - top) / z) * factor(ratio, x, nc, m - x, ns)
      })
      return Math.abs(binomial - 1) < 1e-6 && hyper <= 1 + 1e-9 && betterHyper <= 1 + 1e-9
    }
  ), { numRuns: 300 }, 'E[L] = 1 (binomial), ≤ 1 (hypergeometric, better candidate)')
})

t.test('more candidate failures, the same totals otherwise: a larger e-value', async (t) => {
  holds(t, fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }), (nc, ns, a, xs) => {
    const xc = Math.min(a, nc - 1)
    if (xc < 0 || xs > ns) return true
    const e = (x: number) => {
      const test = new CountRatioTest({ minRatio: 1.5 })
      test.observe({ events: x, requests: nc }, { events: xs, requests: ns })
      return test.logEValue
    }
    return e(xc + 1) >= e(xc) - 1e-12
  }), {}, 'monotone in the candidate\'s failures')
})

/** Streams of equal rates (which may jump, for both lanes at once) and a traffic split that moves. */
function aaCrossings (seed: number, rate: number, share: number, perInterval: number, streams: number, rejectAt: number): number {
  let crossed = 0
  for (let r = 0; r < streams; r++) {
    const test = new CountRatioTest({ minRatio: 1.5 })
    for (let k = 1; k <= 40; k++) {
      const rng = new Rng(seedOf(seed, r, k))
      // an outage hits both lanes from interval 15 to 20; the split goes up every 10 intervals
      const p = k >= 15 && k <= 20 ? Math.min(0.9, rate * 10) : rate
      const s = Math.min(0.95, share * (1 + Math.floor(k / 10)))
      const nc = rng.binomial(perInterval, s)
      const ns = perInterval - nc
      test.observe({ events: rng.binomial(nc, p), requests: nc }, { events: rng.binomial(ns, p), requests: ns })
      if (test.eValue >= rejectAt) {
        crossed++
        break
      }
    }
  }
  return crossed
}

t.test('A/A: the e-value stays below 1/alpha in at least 1 − alpha of the seeds, checked after every interval', async (t) => {
  for (const [alpha, streams] of [[0.05, 200], [0.01, 500]] as const) {
    holds(t, fc.property(
      fc.integer({ min: 0, max: 2 ** 31 }), fc.double({ min: 0.001, max: 0.2, noNaN: true }), fc.double({ min: 0.02, max: 0.5, noNaN: true }), fc.integer({ min: 20, max: 3000 }),
      (seed, rate, share, perInterval) => aaCrossings(seed, rate, share, perInterval, streams, 1 / alpha) <= alpha * streams
    ), { numRuns: 12, seed: 23 }, `alpha ${alpha}: at most ${alpha * streams} of ${streams} A/A streams cross 1/alpha`)
  }
})

t.test('a 5× error rate is found within a few hundred candidate requests', async (t) => {
  const at: number[] = []
  for (let r = 0; r < 100; r++) {
    const test = new CountRatioTest({ minRatio: 1.5 })
    let requests = 0
    for (let k = 1; k <= 100 && test.eValue < 200; k++) {
      const rng = new Rng(seedOf(5, r, k))
      const nc = rng.binomial(200, 0.05)
      requests += nc
      test.observe({ events: rng.binomial(nc, 0.05), requests: nc }, { events: rng.binomial(200 - nc, 0.01), requests: 200 - nc })
    }
    at.push(test.eValue >= 200 ? requests : Infinity)
  }
  at.sort((a, b) => a - b)
  t.ok(at[50]! <= 400, `median ${at[50]} candidate requests`)
  t.ok(at.every(Number.isFinite), 'every stream found it')
})
