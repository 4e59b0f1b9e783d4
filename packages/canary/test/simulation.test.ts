// A small run of bench/simulate.ts's simulation: held at 5% and checked every minute for an hour,
// the sequential judge keeps A/A false rollbacks under alpha with margin and finds a 5× error rate
// within a few hundred candidate requests, while the same checks with a fixed-window z-test at the
// same alpha (what peeking does) roll back far more than alpha of the same healthy canaries.
import t from 'tap'
import { HOLD, SCENARIOS, simulate, summarizeOutcomes } from '../bench/canary-sim.ts'
import { bucketProbabilities, STABLE } from '../bench/canary-sim.ts'
import { Rng } from '../bench/random.ts'

const scenario = (name: string) => SCENARIOS.find((s) => s.name === name)!

t.test('A/A at 1 req/s, 60 checks: under alpha for the sequential judge, not for repeated z-tests', async (t) => {
  const canaries = 300
  const out = simulate({ scenario: scenario('A/A'), protocol: HOLD, candidatePerSecond: 1, judges: ['sequential', 'naive'], canaries, seed: 11 })
  const seq = summarizeOutcomes(out.sequential)
  const naive = summarizeOutcomes(out.naive)
  t.ok(seq.rollbackRate <= 0.01 / 2, `sequential: ${out.sequential.filter((o) => o.rolledBack).length} of ${canaries} rolled back`)
  t.ok(naive.rollbackRate > 0.05, `naive z-test on the same canaries: ${out.naive.filter((o) => o.rolledBack).length} of ${canaries} rolled back`)
})

t.test('a 5× error rate at 1 req/s is rolled back every time, in a median of at most 400 candidate requests', async (t) => {
  const out = simulate({ scenario: scenario('errors 5x'), protocol: { ...HOLD, checks: 20 }, candidatePerSecond: 1, judges: ['sequential'], canaries: 100, seed: 12 })
  const s = summarizeOutcomes(out.sequential)
  t.equal(s.rollbackRate, 1)
  t.ok(s.medianRequests! <= 400, `median ${s.medianRequests} candidate requests, ${s.medianChecks} checks`)
})

t.test('the simulation\'s draws: binomial means and variances, multinomial totals', async (t) => {
  const rng = new Rng(3)
  for (const [n, p] of [[50, 0.1], [100_000, 0.3], [1000, 0.9], [10, 0], [10, 1]] as const) {
    const xs = Array.from({ length: 400 }, () => rng.binomial(n, p))
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length
    const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)
    const npq = n * p * (1 - p)
    t.ok(Math.abs(mean - n * p) <= 4 * Math.sqrt(npq / 400) + 1e-9, `Binomial(${n}, ${p}): mean ${mean}`)
    t.ok(Math.abs(variance - npq) <= 0.3 * npq + 1e-9, `Binomial(${n}, ${p}): variance ${variance.toFixed(1)} against ${npq.toFixed(1)}`)
  }
  const probs = bucketProbabilities(STABLE)
  t.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9)
  const counts = rng.multinomial(10_000, probs)
  t.equal(counts.reduce((a, b) => a + b, 0), 10_000)
})
