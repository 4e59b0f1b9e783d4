// The sequential judge (`judge: 'sequential'`): the candidate against stable with anytime-valid
// tests on counts (sequential.ts), fed with every interval between two checks, and kept for the
// whole canary — across steps, since each interval's test uses that interval's own traffic split.
//
// - Errors: the candidate's and stable's failures (5xx and network errors) per request.
// - Latency: the share of requests slower than a bucket bound: the smallest bound at or above
//   stable's `quantile` in its earlier intervals (a bound chosen before the interval it judges, so
//   the interval's test stays valid), or the bound of `thresholdSeconds`.
// - A test rejects once its e-value reaches 2/alpha (alpha split between the two) and the
//   observed excess is at least `minIncrease`; a rejection stands for the rest of the canary.
// - Verdicts: `fail` on a rejection (at any traffic: a clear regression stops early) or a breach
//   of the absolute thresholds; `waiting` (inconclusive) while the step's window has fewer than
//   `minRequests` candidate requests, while stable has fewer than `minRequests` requests in all
//   the intervals judged (nothing to compare with), or when a reading is invalid; else `pass`:
//   no evidence of harm after the step's minimum exposure. The tests go on at the next step with
//   the evidence so far, so a regression too small to show at 5% is still caught at 25%.
import type { Breach, Judgement } from './judge.ts'
import { absoluteBreaches, pct, sec } from './judge.ts'
import type { Reading } from './scrape.ts'
import { CountRatioTest, type Counts } from './sequential.ts'
import { SequentialSpecSchema, type SequentialSpec } from './sequential-spec.ts'
import type { CanarySpec } from './spec.ts'
import { addInto, delta, emptyFigures, summarize, type Figures } from './window.ts'

/** Stable requests its earlier intervals need before a latency bound is taken from them. */
export const LATENCY_REFERENCE_REQUESTS = 100

/** Evidence so far, for the audit trail and the dashboard. */
export interface SequentialEvidence {
  errors: TestEvidence
  latency: TestEvidence & {
    /** The bound of the last interval tested, seconds; undefined before one is known. */
    thresholdSeconds: number | undefined
  }
  /** Intervals fed to the tests. */
  intervals: number
}

export interface TestEvidence {
  eValue: number
  /** The e-value that rejects: 2 / alpha. */
  rejectAt: number
  /** Events and requests over every interval tested. */
  candidate: Counts
  stable: Counts
  rejected: boolean
}

/**
 * One canary's sequential judge. Create one per canary (the controller keeps it for its life) and
 * call `check` at every check with the latest reading; the intervals between checks are what is
 * tested. A restarted controller starts a new judge: its evidence starts again from there.
 */
export class SequentialJudge {
  #opts: SequentialSpec | undefined
  #errors: CountRatioTest | undefined
  #latency: CountRatioTest | undefined
  /** Last valid figures of each instance fed (key → cumulative figures). */
  readonly #seen = new Map<string, Figures>()
  #started = false
  #intervals = 0
  readonly #errorCounts: Pair = { candidate: { events: 0, requests: 0 }, stable: { events: 0, requests: 0 } }
  readonly #slowCounts: Pair = { candidate: { events: 0, requests: 0 }, stable: { events: 0, requests: 0 } }
  /** Stable's buckets before the canary and over the intervals fed so far (where its latency bound comes from). */
  readonly #stableHistory = emptyFigures()
  #threshold: number | undefined
  readonly #rejected: Breach[] = []
  /** The callers' unseen failures per lane at the previous check, and the window they count in. */
  #callersSeen: { window: object, unseen: ReadonlyMap<string, number> } | undefined

  /**
   * Judge the latest reading.
   * @param window the step's window per lane (from the step's first reading to `reading`): the
   *   step's minimum requests and the absolute thresholds are judged on it; the first check also
   *   takes it as its interval.
   * @param baseline the reading the step's window started from, read at the judge's first check
   *   only: stable's histogram in it (its traffic before the canary) gives the first latency bound,
   *   so latency is judged from the first check on. Without it the bound comes from stable's first
   *   intervals.
   * @param callers the failed calls to each lane that only its callers saw (the lane died before it
   *   could count them), cumulative over `callers.window` (WindowTracker): their increase since the
   *   previous check counts in the interval's error test as failed requests.
   */
  check (spec: CanarySpec, reading: Reading, window: ReadonlyMap<string, Figures>, baseline?: Reading, callers?: CallerFailures): Judgement {
    const opts = this.#options(spec)
    const cw = window.get(spec.candidate) ?? emptyFigures()
    const candidate = summarize(cw)
    const stable = summarize(window.get(spec.stable) ?? emptyFigures())
    const windowProblem = validFigures(cw)
    const base = { candidate, stable, errorRateHigh: windowProblem === undefined && candidate.errorRate > spec.thresholds.errorRate.max }
    const inconclusive: string[] = []
    if (windowProblem !== undefined) inconclusive.push(`invalid figures in the step's window: ${windowProblem}`)

    const step = this.#interval(spec, reading, window, baseline, inconclusive)
    const unseen = this.#unseen(spec, callers)
    if (step !== undefined) this.#feed(opts, step.candidate, step.stable, inconclusive, unseen)

    const breaches = [...this.#rejected]
    if (windowProblem === undefined && candidate.requests >= spec.minRequests) breaches.push(...absoluteBreaches(spec, candidate))
    const evidence = this.#describe(opts)
    if (breaches.length > 0) {
      const what = breaches.map((b) => describeBreach(b, opts)).join('; ')
      return { ...base, verdict: 'fail', breaches, reason: `${what} (${evidence})` }
    }
    if (candidate.requests < spec.minRequests) inconclusive.push(`${candidate.requests} of ${spec.minRequests} candidate requests in the window`)
    if (this.#errorCounts.stable.requests < spec.minRequests) inconclusive.push(`${this.#errorCounts.stable.requests} of ${spec.minRequests} ${spec.stable} requests to compare with`)
    if (inconclusive.length > 0) return { ...base, verdict: 'waiting', breaches: [], reason: `inconclusive: ${inconclusive.join('; ')} (${evidence})` }
    return { ...base, verdict: 'pass', breaches: [], reason: `no evidence against ${spec.candidate}: ${evidence}` }
  }

  /** The evidence so far (undefined before the first check). */
  get evidence (): SequentialEvidence | undefined {
    const opts = this.#opts
    if (opts === undefined) return undefined
    const rejectAt = 2 / opts.alpha
    const test = (t: CountRatioTest | undefined, counts: Pair, check: string): TestEvidence => ({
      eValue: t?.eValue ?? 1,
      rejectAt,
      candidate: { ...counts.candidate },
      stable: { ...counts.stable },
      rejected: this.#rejected.some((b) => b.check === check)
    })
    return {
      errors: test(this.#errors, this.#errorCounts, ERRORS),
      latency: { ...test(this.#latency, this.#slowCounts, LATENCY), thresholdSeconds: this.#threshold },
      intervals: this.#intervals
    }
  }

  #options (spec: CanarySpec): SequentialSpec {
    if (this.#opts === undefined) {
      // A spec saved before the sequential judge existed has no `sequential`: its defaults apply.
      this.#opts = SequentialSpecSchema.parse(spec.sequential ?? {})
      this.#errors = new CountRatioTest({ minRatio: this.#opts.errors.minRatio })
      this.#latency = new CountRatioTest({ minRatio: this.#opts.latency.minRatio })
    }
    return this.#opts
  }

  /**
   * Each lane's figures since the previous check: per instance, the difference from the last valid
   * figures fed (a counter that went down restarted). An instance seen for the first time adds
   * nothing yet (it may be one whose earlier readings failed: its whole history is not this
   * interval's). The first check takes the step's window instead. Invalid figures are left out and
   * make the check inconclusive.
   */
  #interval (spec: CanarySpec, reading: Reading, window: ReadonlyMap<string, Figures>, baseline: Reading | undefined, inconclusive: string[]): { candidate: Figures, stable: Figures } | undefined {
    const lanes = new Map<string, Figures>()
    let bad = 0
    for (const i of reading.instances.values()) {
      if (i.figures === undefined) continue
      if (validFigures(i.figures) !== undefined) {
        bad++
        continue
      }
      const prev = this.#seen.get(i.key)
      this.#seen.set(i.key, i.figures)
      if (prev === undefined) continue
      let f = lanes.get(i.lane)
      if (f === undefined) lanes.set(i.lane, (f = emptyFigures()))
      addInto(f, delta(i.figures, prev))
    }
    if (!this.#started) {
      this.#started = true
      lanes.clear()
      for (const [lane, f] of window) lanes.set(lane, f)
      for (const i of baseline?.instances.values() ?? []) {
        if (i.lane === spec.stable && i.figures !== undefined && validFigures(i.figures) === undefined) addInto(this.#stableHistory, i.figures)
      }
    }
    const candidate = lanes.get(spec.candidate) ?? emptyFigures()
    const stable = lanes.get(spec.stable) ?? emptyFigures()
    const why = validFigures(candidate) ?? validFigures(stable)
    if (bad > 0 || why !== undefined) {
      inconclusive.push(bad > 0 ? `invalid figures from ${bad} instance(s)` : `invalid figures in the interval: ${why}`)
      if (why !== undefined) return undefined
    }
    return { candidate, stable }
  }

  /** Each lane's failed calls seen only by its callers since the previous check (0 without callers). */
  #unseen (spec: CanarySpec, callers: CallerFailures | undefined): { candidate: number, stable: number } {
    if (callers === undefined) return { candidate: 0, stable: 0 }
    const prev = this.#callersSeen?.window === callers.window ? this.#callersSeen.unseen : undefined
    this.#callersSeen = { window: callers.window, unseen: new Map(callers.unseen) }
    const since = (lane: string) => Math.max(0, (callers.unseen.get(lane) ?? 0) - (prev?.get(lane) ?? 0))
    return { candidate: since(spec.candidate), stable: since(spec.stable) }
  }

  #feed (opts: SequentialSpec, c: Figures, s: Figures, inconclusive: string[], unseen: { candidate: number, stable: number }): void {
    const errors = this.#errors!
    const latency = this.#latency!
    // Calls that failed before the lane could count them are failed requests of the error test
    // (the latency test has no duration for them).
    const cErr = { events: c.serverErrors + c.networkErrors + unseen.candidate, requests: c.requests + unseen.candidate }
    const sErr = { events: s.serverErrors + s.networkErrors + unseen.stable, requests: s.requests + unseen.stable }
    errors.observe(cErr, sErr)
    add(this.#errorCounts, cErr, sErr)
    this.#intervals++

    const bound = opts.latency.thresholdSeconds ?? this.#referenceBound(opts.latency.quantile)
    if (bound !== undefined && c.requests > 0 && s.requests > 0) {
      const cSlow = slowerThan(c, bound)
      const sSlow = cSlow === undefined ? undefined : slowerThan(s, cSlow.bound)
      if (cSlow === undefined || sSlow === undefined || sSlow.bound !== cSlow.bound) {
        inconclusive.push(`no bucket at or above ${sec(bound)} in both lanes' histograms`)
      } else {
        this.#threshold = cSlow.bound
        latency.observe(cSlow.counts, sSlow.counts)
        add(this.#slowCounts, cSlow.counts, sSlow.counts)
      }
    }
    addInto(this.#stableHistory, s)

    const rejectAt = 2 / opts.alpha
    if (!this.#rejected.some((b) => b.check === ERRORS) && errors.eValue >= rejectAt && excess(this.#errorCounts) >= opts.errors.minIncrease) {
      this.#rejected.push({ check: ERRORS, value: errors.eValue, threshold: rejectAt, action: opts.errors.action })
    }
    if (!this.#rejected.some((b) => b.check === LATENCY) && latency.eValue >= rejectAt && excess(this.#slowCounts) >= opts.latency.minIncrease) {
      this.#rejected.push({ check: LATENCY, value: latency.eValue, threshold: rejectAt, action: opts.latency.action })
    }
  }

  /** The smallest finite bound with at most (1 − q) of stable's earlier requests above it. */
  #referenceBound (q: number): number | undefined {
    const total = this.#stableHistory.requests
    if (total < LATENCY_REFERENCE_REQUESTS) return undefined
    for (const [le, n] of this.#stableHistory.buckets) {
      if (le !== Infinity && total - n <= (1 - q) * total) return le
    }
    return undefined
  }

  #describe (opts: SequentialSpec): string {
    const rejectAt = 2 / opts.alpha
    const e = this.#errorCounts
    const l = this.#slowCounts
    return `errors e=${fmt(this.#errors!.eValue)} of ${fmt(rejectAt)}, ${share(e.candidate)} vs ${share(e.stable)} failed; ` +
      `latency e=${fmt(this.#latency!.eValue)} of ${fmt(rejectAt)}, ` +
      (this.#threshold === undefined ? 'no bound yet' : `${share(l.candidate)} vs ${share(l.stable)} slower than ${sec(this.#threshold)}`)
  }
}

interface Pair { candidate: Counts, stable: Counts }

/** Failed calls to each lane that only its callers saw, cumulative over one window. */
export interface CallerFailures {
  /** The window they are counted over (a new one counts from zero). */
  window: object
  /** Lane → failed calls its instances never counted. */
  unseen: ReadonlyMap<string, number>
}

const ERRORS = 'sequential.errorRate'
const LATENCY = 'sequential.latency'

function describeBreach (b: Breach, opts: SequentialSpec): string {
  if (b.check === ERRORS) return `errors: more frequent than stable's (e-value ${fmt(b.value)} ≥ ${fmt(b.threshold)}, ratio ≥ ${opts.errors.minRatio} looked for)`
  if (b.check === LATENCY) return `latency: more requests slower than the bound than stable's (e-value ${fmt(b.value)} ≥ ${fmt(b.threshold)}, ratio ≥ ${opts.latency.minRatio} looked for)`
  return b.check === 'p99' ? `p99 ${sec(b.value)} > ${b.threshold} s` : `${b.check} ${pct(b.value)} > ${pct(b.threshold)}`
}

/** Why figures cannot be tested, or undefined when they can. */
export function validFigures (f: Figures): string | undefined {
  const counts = [f.requests, f.serverErrors, f.networkErrors]
  if (!counts.every((n) => Number.isSafeInteger(n) && n >= 0)) return 'counts that are not non-negative integers'
  if (f.serverErrors + f.networkErrors > f.requests) return 'more errors than requests'
  if (f.requests === 0 && f.buckets.length === 0) return undefined
  if (f.buckets.length === 0) return 'requests without histogram buckets'
  let prev = 0
  for (const [le, n] of f.buckets) {
    if (Number.isNaN(le) || !Number.isSafeInteger(n) || n < prev) return 'histogram buckets that are not cumulative counts'
    prev = n
  }
  const last = f.buckets.at(-1)!
  if (last[0] !== Infinity || last[1] !== f.requests) return 'a +Inf bucket that does not count every request'
  return undefined
}

/** Requests slower than the smallest bound ≥ `bound` (undefined when the histogram has none below +Inf). */
function slowerThan (f: Figures, bound: number): { bound: number, counts: Counts } | undefined {
  const b = f.buckets.find(([le]) => le >= bound * (1 - 1e-9) && le !== Infinity)
  return b === undefined ? undefined : { bound: b[0], counts: { events: f.requests - b[1], requests: f.requests } }
}

function add (to: Pair, c: Counts, s: Counts): void {
  to.candidate.events += c.events
  to.candidate.requests += c.requests
  to.stable.events += s.events
  to.stable.requests += s.requests
}

/** Candidate's event share minus stable's, over every interval tested. */
function excess (c: Pair): number {
  const rate = (x: Counts) => (x.requests === 0 ? 0 : x.events / x.requests)
  return rate(c.candidate) - rate(c.stable)
}

function share (c: Counts): string {
  return `${c.events}/${c.requests} (${c.requests === 0 ? 'n/a' : pct(c.events / c.requests)})`
}

function fmt (x: number): string {
  if (x < 0.01) return '<0.01'
  if (x < 10) return x.toFixed(2)
  return x < 1e6 ? x.toFixed(0) : x.toExponential(1)
}
