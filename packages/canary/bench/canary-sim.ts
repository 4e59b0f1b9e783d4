// Simulated canaries for the judges: seeded per-interval traffic of a stable and a candidate lane
// (errors, and durations in the preset's histogram buckets), judged every interval by a model of
// the controller's check loop, so each judge's false rollbacks and detection can be counted.
// Used by bench/simulate.ts (the table in BENCHMARKS.md) and by test/simulation.test.ts.
import { judge, type Judgement } from '../src/judge.ts'
import type { Reading } from '../src/scrape.ts'
import { SequentialJudge } from '../src/sequential-judge.ts'
import { parseCanarySpec, type CanarySpec, type CanarySpecInput } from '../src/spec.ts'
import { emptyFigures, summarize, delta, type Figures } from '../src/window.ts'
import { normalCdf, Rng, seedOf } from './random.ts'

/** The preset's bucket bounds of `http.server.request.duration` (seconds). */
export const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

export interface Lane {
  /** Share of requests that fail (5xx). */
  errorRate: number
  /** Median duration, seconds; durations are log-normal. */
  median: number
  /** Standard deviation of ln(duration). */
  sigma: number
}

export interface Scenario {
  name: string
  stable: Lane
  candidate: Lane
}

export const STABLE: Lane = { errorRate: 0.01, median: 0.05, sigma: 0.5 }

/** A/A and the A/B cases of the issue (error rate 1.5×, 2×, 5× stable's; latency +20%, +100%), and 1.1× (below `minRatio`). */
export const SCENARIOS: Scenario[] = [
  { name: 'A/A', stable: STABLE, candidate: STABLE },
  { name: 'errors 1.1x', stable: STABLE, candidate: { ...STABLE, errorRate: 0.011 } },
  { name: 'errors 1.5x', stable: STABLE, candidate: { ...STABLE, errorRate: 0.015 } },
  { name: 'errors 2x', stable: STABLE, candidate: { ...STABLE, errorRate: 0.02 } },
  { name: 'errors 5x', stable: STABLE, candidate: { ...STABLE, errorRate: 0.05 } },
  { name: 'latency +20%', stable: STABLE, candidate: { ...STABLE, median: STABLE.median * 1.2 } },
  { name: 'latency +100%', stable: STABLE, candidate: { ...STABLE, median: STABLE.median * 2 } }
]

/** How the canary is run. */
export interface Protocol {
  name: string
  /** Candidate shares (%) of the steps; one step = held at that share for `checks` checks. */
  steps: number[]
  /** Checks in all (the canary's deadline in intervals). */
  checks: number
  /** Passing checks that move to the next step (Infinity: the step is held, every check counts). */
  checksPerStep: number
}

/** One step held at 5% for an hour, checked every minute: every check can roll back. */
export const HOLD: Protocol = { name: 'hold 5%, 60 checks', steps: [5], checks: 60, checksPerStep: Infinity }
/** The default spec's steps, one passing check each, within the default one-hour deadline. */
export const ROLLOUT: Protocol = { name: 'steps 5-10-25-50-100', steps: [5, 10, 25, 50, 100], checks: 60, checksPerStep: 1 }

export type JudgeName = 'sequential' | 'threshold' | 'naive'

/** The judges compared: the new one, today's, and a repeated fixed-window z-test at the same alpha. */
export interface SimJudge {
  check (reading: Reading, window: ReadonlyMap<string, Figures>, baseline: Reading): Judgement
}

export function makeJudge (name: JudgeName, spec: CanarySpec): SimJudge {
  if (name === 'sequential') {
    const j = new SequentialJudge()
    return { check: (reading, window, baseline) => j.check(spec, reading, window, baseline) }
  }
  if (name === 'threshold') {
    return { check: (_reading, window) => judge(spec, summarize(window.get(spec.candidate) ?? emptyFigures()), summarize(window.get(spec.stable) ?? emptyFigures())) }
  }
  return { check: (_reading, window) => naiveJudge(spec, window.get(spec.candidate) ?? emptyFigures(), window.get(spec.stable) ?? emptyFigures()) }
}

/**
 * What peeking looks like: each check runs one-sided two-proportion z-tests on the step's whole
 * window (errors; requests slower than stable's p90 bucket), each at alpha/2, as if it were the
 * only look. Rejects with action rollback, like the sequential judge, so only the test differs.
 */
export function naiveJudge (spec: CanarySpec, c: Figures, s: Figures): Judgement {
  const candidate = summarize(c)
  const stable = summarize(s)
  const base = { candidate, stable, errorRateHigh: false }
  const z = zQuantile(1 - spec.sequential.alpha / 2)
  const breaches: Judgement['breaches'] = []
  const ze = zTwoProportions(c.serverErrors + c.networkErrors, c.requests, s.serverErrors + s.networkErrors, s.requests)
  if (ze > z) breaches.push({ check: 'naive.errorRate', value: ze, threshold: z, action: 'rollback' })
  const bound = s.buckets.find(([le, n]) => le !== Infinity && s.requests - n <= 0.1 * s.requests)?.[0]
  if (bound !== undefined && s.requests >= spec.minRequests) {
    const above = (f: Figures) => f.requests - (f.buckets.find(([le]) => le === bound)?.[1] ?? f.requests)
    const zl = zTwoProportions(above(c), c.requests, above(s), s.requests)
    if (zl > z) breaches.push({ check: 'naive.latency', value: zl, threshold: z, action: 'rollback' })
  }
  if (breaches.length > 0) return { ...base, verdict: 'fail', breaches, reason: 'z-test' }
  if (c.requests < spec.minRequests) return { ...base, verdict: 'waiting', breaches, reason: 'minRequests' }
  return { ...base, verdict: 'pass', breaches, reason: 'z-test' }
}

function zTwoProportions (xc: number, nc: number, xs: number, ns: number): number {
  if (nc === 0 || ns === 0) return 0
  const p = (xc + xs) / (nc + ns)
  const se = Math.sqrt(p * (1 - p) * (1 / nc + 1 / ns))
  return se === 0 ? 0 : (xc / nc - xs / ns) / se
}

/** Inverse standard normal CDF by bisection (accurate enough for a critical value). */
function zQuantile (q: number): number {
  let lo = -10
  let hi = 10
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2
    if (normalCdf(mid) < q) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/** Bucket probabilities (14 finite bounds, then +Inf) of a lane's log-normal durations. */
export function bucketProbabilities (lane: Lane): number[] {
  const cdf = BOUNDS.map((b) => normalCdf(Math.log(b / lane.median) / lane.sigma))
  return [...cdf.map((p, i) => p - (i === 0 ? 0 : cdf[i - 1]!)), 1 - cdf.at(-1)!]
}

/** One interval's figures of `n` requests of a lane. */
function sample (rng: Rng, lane: Lane, probs: readonly number[], n: number): Figures {
  const errors = rng.binomial(n, lane.errorRate)
  const counts = rng.multinomial(n, probs)
  let cum = 0
  const buckets: Array<[number, number]> = counts.map((k, i) => [i < BOUNDS.length ? BOUNDS[i]! : Infinity, (cum += k)])
  return { requests: n, serverErrors: errors, networkErrors: 0, seconds: n * lane.median * Math.exp(lane.sigma ** 2 / 2), buckets }
}

export interface Outcome {
  /** Rolled back by a failed check (not by a deadline). */
  rolledBack: boolean
  /** All steps passed. */
  promoted: boolean
  /** Candidate requests from the start to the deciding check (or to the end). */
  requests: number
  /** Checks (intervals) from the start to the deciding check (or to the end). */
  checks: number
}

export interface RunOptions {
  scenario: Scenario
  protocol: Protocol
  /** Candidate requests per second at the first step; the service's total is this / first share. */
  candidatePerSecond: number
  judges: readonly JudgeName[]
  canaries: number
  seed: number
  /** Spec fields over the defaults (service and lanes are filled in). */
  spec?: Partial<CanarySpecInput>
  intervalSeconds?: number
}

/**
 * Run `canaries` simulated canaries with each judge. Each interval's traffic comes from a PRNG
 * seeded by (seed, canary, interval, share), so every judge sees the same requests as long as it
 * is at the same step as the others (always, when a step is held).
 */
export function simulate (o: RunOptions): Record<JudgeName, Outcome[]> {
  const spec = parseCanarySpec({ service: 'sim', candidate: 'v2', stable: 'v1', ...o.spec })
  const interval = o.intervalSeconds ?? spec.intervalMs / 1000
  const total = (o.candidatePerSecond * interval * 100) / o.protocol.steps[0]!
  const probs = { stable: bucketProbabilities(o.scenario.stable), candidate: bucketProbabilities(o.scenario.candidate) }
  const out = Object.fromEntries(o.judges.map((j) => [j, [] as Outcome[]])) as Record<JudgeName, Outcome[]>
  for (let c = 0; c < o.canaries; c++) {
    // Stable's last 10 intervals before the canary: what its instances' counters hold at the start.
    const pre = new Rng(seedOf(o.seed, c, 0))
    const history: Record<'v1' | 'v2', Figures> = { v1: sample(pre, o.scenario.stable, probs.stable, Math.round(10 * total)), v2: emptyFigures() }
    const runs = o.judges.map((name) => ({
      name,
      judge: makeJudge(name, spec),
      step: 0,
      passed: 0,
      failed: 0,
      cum: { ...history },
      base: readingOf(0, history),
      requests: 0,
      done: undefined as Outcome | undefined
    }))
    for (let k = 1; k <= o.protocol.checks && runs.some((r) => r.done === undefined); k++) {
      const traffic = new Map<number, { v1: Figures, v2: Figures }>()
      for (const r of runs) {
        if (r.done !== undefined) continue
        const share = o.protocol.steps[r.step]!
        let t = traffic.get(share)
        if (t === undefined) {
          const rng = new Rng(seedOf(o.seed, c, k, share))
          const nc = rng.binomial(Math.round(total), share / 100)
          t = { v2: sample(rng, o.scenario.candidate, probs.candidate, nc), v1: sample(rng, o.scenario.stable, probs.stable, Math.round(total) - nc) }
          traffic.set(share, t)
        }
        for (const lane of ['v1', 'v2'] as const) r.cum[lane] = addFigures(r.cum[lane], t[lane])
        r.requests += t.v2.requests
        const reading = readingOf(k, r.cum)
        const window = new Map([['v1', delta(r.cum.v1, r.base.instances.get('v1')!.figures)], ['v2', delta(r.cum.v2, r.base.instances.get('v2')!.figures)]])
        const j = r.judge.check(reading, window, r.base)
        // The controller's #check, without convergence, webhooks or people.
        if (j.verdict === 'pass') {
          r.failed = 0
          r.passed++
          if (r.passed >= o.protocol.checksPerStep) {
            if (r.step === o.protocol.steps.length - 1) r.done = { rolledBack: false, promoted: true, requests: r.requests, checks: k }
            else {
              r.step++
              r.passed = 0
              r.base = reading
            }
          }
        } else if (j.verdict === 'fail') {
          r.failed++
          r.passed = 0
          if (j.breaches.some((b) => b.action === 'rollback') || r.failed >= spec.failedChecks) r.done = { rolledBack: true, promoted: false, requests: r.requests, checks: k }
        }
      }
    }
    for (const r of runs) out[r.name].push(r.done ?? { rolledBack: false, promoted: false, requests: r.requests, checks: o.protocol.checks })
  }
  return out
}

function readingOf (at: number, cum: Record<'v1' | 'v2', Figures>): Reading {
  const instances: Reading['instances'] = new Map()
  for (const lane of ['v1', 'v2'] as const) instances.set(lane, { key: lane, lane, figures: cum[lane], metadata: { version: lane } })
  return { at, instances }
}

function addFigures (a: Figures, b: Figures): Figures {
  const buckets: Array<[number, number]> = b.buckets.map(([le, n], i) => [le, n + (a.buckets[i]?.[1] ?? 0)])
  return { requests: a.requests + b.requests, serverErrors: a.serverErrors + b.serverErrors, networkErrors: a.networkErrors + b.networkErrors, seconds: a.seconds + b.seconds, buckets }
}

export interface Summary {
  canaries: number
  /** Share rolled back by a failed check. */
  rollbackRate: number
  promotedRate: number
  /** Medians over the rolled-back canaries (undefined when none was). */
  medianRequests: number | undefined
  medianChecks: number | undefined
}

export function summarizeOutcomes (outcomes: readonly Outcome[]): Summary {
  const rolled = outcomes.filter((o) => o.rolledBack)
  return {
    canaries: outcomes.length,
    rollbackRate: rolled.length / outcomes.length,
    promotedRate: outcomes.filter((o) => o.promoted).length / outcomes.length,
    medianRequests: median(rolled.map((o) => o.requests)),
    medianChecks: median(rolled.map((o) => o.checks))
  }
}

function median (xs: number[]): number | undefined {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1]! + s[m]!) / 2
}
