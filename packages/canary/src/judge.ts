// One check of a step: the candidate lane against the stable lane over the same window.
//
// Statistics, and why:
// - Error shares are compared as proportions of the same window's requests. The absolute
//   thresholds (5xx > 10%, errors > 5%) apply to the candidate's share. The relative one
//   (candidate − stable > maxErrorRateIncrease) must also hold at the lower end of the
//   candidate's 95% Wilson score interval, so a handful of unlucky requests at a 5% step does
//   not roll a healthy candidate back, while 20% failures over 100 requests do (lower bound ≈ 13%).
// - Latency is the p99 estimated from the histogram buckets (as histogram_quantile does), against
//   an absolute bound and a ratio to the stable lane's p99 above a floor. Kayenta's Mann–Whitney U
//   needs raw samples; the instances export buckets, and a rank test over ~14 bucket values is
//   dominated by ties, so it would not add power here.
// - Restarts are a signal of their own: a candidate whose instances restarted more often than the
//   stable lane's in the same window (a counter reset, a new process start time, an instance gone
//   from discovery) fails the check, whatever its request count: a crash-looping process counts
//   only its latest life's requests. A window in which a candidate instance restarted, or could not
//   be read, is never passed on those partial figures: it is `waiting`.
// - Callers' failed calls to a lane that the lane did not count itself (it died mid-request) are
//   in its figures as network errors (WindowTracker).
// - A figure that is not a finite number ≥ 0 makes the window invalid: `waiting`, never a pass.
// - Nothing is judged below `minRequests` candidate requests: that is `waiting`, never a pass.
//   The relative checks also need the stable lane to have `minRequests` in the window (at 100%
//   it has almost none), and the p99 ratio needs 100 requests on each side: below that a p99 is
//   just the slowest request.
import type { CanarySpec } from './spec.ts'
import { countable, type LaneWindow } from './window.ts'

export interface Breach {
  /** `restarts`, `serverErrorRate`, `p99`, `relative.errorRate`, `relative.p99` */
  check: string
  value: number
  threshold: number
  action: 'pause' | 'rollback'
  /** In a lane canary: the service whose check this is. */
  service?: string
}

export interface Judgement {
  verdict: 'waiting' | 'pass' | 'fail'
  candidate: LaneWindow
  stable: LaneWindow
  breaches: Breach[]
  /** The candidate's error share is above `thresholds.errorRate.max` in this window. */
  errorRateHigh: boolean
  /** Why, in words (for the audit trail and the CLI). */
  reason: string
}

/** Requests each lane needs before their p99s are compared: fewer, and a p99 is the maximum. */
export const P99_MIN_REQUESTS = 100

/** Lower bound of the 95% Wilson score interval of k successes in n trials. */
export function wilsonLower (k: number, n: number, z = 1.96): number {
  if (n === 0) return 0
  const p = k / n
  const z2 = z * z
  const centre = p + z2 / (2 * n)
  const margin = z * Math.sqrt((p * (1 - p) + z2 / (4 * n)) / n)
  return Math.max(0, (centre - margin) / (1 + z2 / n))
}

/** What is not a finite number ≥ 0 in a window's figures; undefined when all are. */
export function windowProblem (w: LaneWindow): string | undefined {
  for (const k of ['requests', 'errorRate', 'serverErrorRate', 'networkErrors'] as const) if (!countable(w[k])) return `${k} ${w[k]}`
  for (const k of ['p99', 'mean', 'restarts', 'callerFailures'] as const) if (w[k] !== undefined && !countable(w[k])) return `${k} ${w[k]}`
  return undefined
}

/**
 * What every judge decides before comparing the lanes (`judge: 'threshold'` and `'sequential'`
 * alike): invalid figures wait; more candidate restarts than stable's fail; a window whose
 * candidate figures are partial (an instance restarted, unread, gone or read late) waits.
 * Undefined when the lanes may be compared.
 */
export function gate (spec: CanarySpec, candidate: LaneWindow, stable: LaneWindow): Judgement | undefined {
  const t = spec.thresholds
  const base = { candidate, stable, breaches: [] as Breach[], errorRateHigh: false }
  const invalid = windowProblem(candidate) ?? windowProblem(stable)
  if (invalid !== undefined) {
    return { ...base, verdict: 'waiting', reason: `invalid figures (${windowProblem(candidate) === undefined ? 'stable' : 'candidate'} ${invalid}): not judged` }
  }
  const restarts = candidate.restarts ?? 0
  const allowed = (stable.restarts ?? 0) + t.restarts.maxIncrease
  if (restarts > allowed) {
    const breach: Breach = { check: 'restarts', value: restarts, threshold: allowed, action: t.restarts.action }
    return {
      ...base,
      breaches: [breach],
      errorRateHigh: candidate.errorRate > t.errorRate.max,
      verdict: 'fail',
      reason: `restarts ${restarts} > ${allowed} (candidate ${restarts}, stable ${stable.restarts ?? 0} in the window: ${(candidate.partial ?? []).join(', ')}; ${describe(candidate, stable)})`
    }
  }
  if ((candidate.partial?.length ?? 0) > 0) {
    return { ...base, verdict: 'waiting', reason: `the candidate's figures do not cover the window: ${candidate.partial!.join(', ')}` }
  }
  return undefined
}

export function judge (spec: CanarySpec, candidate: LaneWindow, stable: LaneWindow): Judgement {
  const t = spec.thresholds
  const base = { candidate, stable, breaches: [] as Breach[], errorRateHigh: false }
  const gated = gate(spec, candidate, stable)
  if (gated !== undefined) return gated
  if (candidate.requests < spec.minRequests) {
    return { ...base, verdict: 'waiting', reason: `${candidate.requests} of ${spec.minRequests} candidate requests in the window` }
  }
  const breaches = absoluteBreaches(spec, candidate)
  const rel = t.relative
  const comparable = stable.requests >= spec.minRequests
  const errors = Math.round(candidate.errorRate * candidate.requests)
  const excess = candidate.errorRate - stable.errorRate
  if (comparable && excess > rel.maxErrorRateIncrease && wilsonLower(errors, candidate.requests) > stable.errorRate) {
    breaches.push({ check: 'relative.errorRate', value: excess, threshold: rel.maxErrorRateIncrease, action: rel.action })
  }
  const p99Comparable = comparable && Math.min(candidate.requests, stable.requests) >= P99_MIN_REQUESTS
  if (p99Comparable && candidate.p99 !== undefined && stable.p99 !== undefined && stable.p99 > 0 && candidate.p99 > rel.p99FloorSeconds) {
    const r = candidate.p99 / stable.p99
    if (r > rel.maxP99Ratio) breaches.push({ check: 'relative.p99', value: r, threshold: rel.maxP99Ratio, action: rel.action })
  }
  const errorRateHigh = candidate.errorRate > t.errorRate.max
  const figures = describe(candidate, stable)
  if (breaches.length === 0) return { ...base, errorRateHigh, verdict: 'pass', reason: figures }
  const what = breaches.map((b) => `${b.check} ${b.check.endsWith('p99') && !b.check.startsWith('relative') ? sec(b.value) : b.check === 'relative.p99' ? `${b.value.toFixed(2)}x` : pct(b.value)} > ${b.threshold}`).join(', ')
  return { ...base, errorRateHigh, breaches, verdict: 'fail', reason: `${what} (${figures})` }
}

/** The candidate's own limits (`thresholds.serverErrorRate`, `thresholds.p99`): policy, not a comparison. */
export function absoluteBreaches (spec: CanarySpec, candidate: LaneWindow): Breach[] {
  const t = spec.thresholds
  const breaches: Breach[] = []
  if (candidate.serverErrorRate > t.serverErrorRate.max) {
    breaches.push({ check: 'serverErrorRate', value: candidate.serverErrorRate, threshold: t.serverErrorRate.max, action: t.serverErrorRate.action })
  }
  if (candidate.p99 !== undefined && candidate.p99 > t.p99.maxSeconds) {
    breaches.push({ check: 'p99', value: candidate.p99, threshold: t.p99.maxSeconds, action: t.p99.action })
  }
  return breaches
}

function describe (candidate: LaneWindow, stable: LaneWindow): string {
  const callers = (candidate.callerFailures ?? 0) > 0 ? ` (${candidate.callerFailures} failed calls seen by callers)` : ''
  return `candidate ${candidate.requests} req, errors ${pct(candidate.errorRate)}${callers}, 5xx ${pct(candidate.serverErrorRate)}, p99 ${sec(candidate.p99)}; ` +
    `stable ${stable.requests} req, errors ${pct(stable.errorRate)}, p99 ${sec(stable.p99)}`
}

export function pct (x: number): string {
  return `${(x * 100).toFixed(1)}%`
}

export function sec (x: number | undefined): string {
  return x === undefined ? 'n/a' : `${(x * 1000).toFixed(0)} ms`
}
