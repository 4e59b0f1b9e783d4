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
// - Nothing is judged below `minRequests` candidate requests: that is `waiting`, never a pass.
//   The relative checks also need the stable lane to have `minRequests` in the window (at 100%
//   it has almost none), and the p99 ratio needs 100 requests on each side: below that a p99 is
//   just the slowest request.
import type { CanarySpec } from './spec.ts'
import type { LaneWindow } from './window.ts'

export interface Breach {
  /** `serverErrorRate`, `p99`, `relative.errorRate`, `relative.p99` */
  check: string
  value: number
  threshold: number
  action: 'pause' | 'rollback'
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

export function judge (spec: CanarySpec, candidate: LaneWindow, stable: LaneWindow): Judgement {
  const t = spec.thresholds
  const base = { candidate, stable, breaches: [] as Breach[], errorRateHigh: false }
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
  const figures = `candidate ${candidate.requests} req, errors ${pct(candidate.errorRate)}, 5xx ${pct(candidate.serverErrorRate)}, p99 ${sec(candidate.p99)}; ` +
    `stable ${stable.requests} req, errors ${pct(stable.errorRate)}, p99 ${sec(stable.p99)}`
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

export function pct (x: number): string {
  return `${(x * 100).toFixed(1)}%`
}

export function sec (x: number | undefined): string {
  return x === undefined ? 'n/a' : `${(x * 1000).toFixed(0)} ms`
}
