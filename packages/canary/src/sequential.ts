// An anytime-valid sequential test on counts: are the candidate's events (failures, slow
// requests) more frequent per request than the stable lane's?
//
// Each interval brings, per lane, the requests n and the events x among them. Given the
// interval's total events m = x_c + x_s, and the requests of each lane, the candidate's share of
// the events is what carries the comparison: if each request of either lane has the same chance
// of an event (whatever that chance is, and however it drifts in time), x_c given m is
// hypergeometric (a random m of the n_c + n_s requests), and with Poisson counts it is
// Binomial(m, s) with s = n_c / (n_c + n_s). If the candidate's rate is ρ times stable's, the
// Poisson model gives Binomial(m, θ(ρ)), θ(ρ) = ρ n_c / (ρ n_c + n_s). The likelihood ratio of
// ρ against 1 for one interval is then
//
//     L(ρ) = (θ(ρ)/s)^x_c ((1 − θ(ρ))/(1 − s))^x_s = ρ^x_c / (1 + s(ρ − 1))^m.
//
// Under "no worse" (ρ ≤ 1) its conditional mean given the past is at most 1: exactly 1 under the
// binomial; at most 1 under the hypergeometric, which is smaller in the convex order (Hoeffding
// 1963, theorem 4) while L is convex in x_c; and smaller still when the candidate is better, since
// L increases in x_c for ρ > 1. So for each ρ the product over intervals is a nonnegative
// supermartingale starting at 1, and so is any fixed mixture of them over ρ. Ville's inequality:
// P(the mixture ever reaches 1/α) ≤ α, however often it is looked at. The share s may change
// every interval (steps, uneven traffic): each factor uses its own interval's s.
//
// The mixture is over a log-spaced grid of ratios from `minRatio` to `maxRatio`, equal weights:
// a discrete prior keeps the e-value exact and the state a few numbers. Alternatives below
// `minRatio` are not looked for: a candidate worse by less than about (minRatio − 1)/ln(minRatio)
// (1.23× for 1.5) makes every term drift down, so it is almost never flagged.
//
// Sources: M. Lindon & A. Malek, "Anytime-Valid Inference for Multinomial Count Data", NeurIPS
// 2022 (arXiv 2011.03567), section 4 (time-inhomogeneous Poisson processes, the conditional
// multinomial and its mixture martingale); M. Lindon et al., "Rapid Regression Detection in
// Software Deployments through Sequential Testing", KDD 2022 (arXiv 2205.14762); J. Ville,
// "Étude critique de la notion de collectif", 1939; W. Hoeffding, "Probability inequalities for
// sums of bounded random variables", JASA 1963.

export interface CountTestOptions {
  /** Smallest rate ratio (candidate / stable) the test looks for; > 1. */
  minRatio: number
  /** Largest. @default 100 */
  maxRatio?: number
  /** Grid points between them (log-spaced). @default 24 */
  points?: number
}

/** One lane's counts over one interval. */
export interface Counts {
  /** Events (failures, or requests slower than a threshold). */
  events: number
  requests: number
}

/** Whether counts can be tested: finite non-negative integers, events ≤ requests. */
export function validCounts (c: Counts): boolean {
  return Number.isSafeInteger(c.requests) && Number.isSafeInteger(c.events) && c.events >= 0 && c.events <= c.requests
}

/**
 * The test's state: per grid ratio, the log of the product of the intervals' likelihood ratios.
 * `observe` each interval once; `eValue` can be read at any time, as often as wanted.
 */
export class CountRatioTest {
  readonly ratios: readonly number[]
  readonly #logRatios: number[]
  readonly #logLR: number[]
  readonly #logWeight: number
  #intervals = 0

  /** @throws {RangeError} when minRatio ≤ 1, maxRatio < minRatio or points < 1 */
  constructor (options: CountTestOptions) {
    const { minRatio, maxRatio = 100, points = 24 } = options
    if (!(minRatio > 1) || !(maxRatio >= minRatio) || !Number.isInteger(points) || points < 1) {
      throw new RangeError(`CountRatioTest: need 1 < minRatio ≤ maxRatio and integer points ≥ 1 (got ${minRatio}, ${maxRatio}, ${points})`)
    }
    const k = points === 1 ? 0 : Math.log(maxRatio / minRatio) / (points - 1)
    this.ratios = Array.from({ length: points }, (_, i) => minRatio * Math.exp(k * i))
    this.#logRatios = this.ratios.map(Math.log)
    this.#logLR = this.ratios.map(() => 0)
    this.#logWeight = -Math.log(points)
  }

  /** Intervals that carried information (both lanes had requests and some event happened). */
  get intervals (): number { return this.#intervals }

  /**
   * Take one interval's counts. An interval in which a lane had no request or no event happened
   * says nothing about the ratio and leaves the test as it was.
   * @throws {RangeError} on counts that are not valid (see `validCounts`): the caller checks first
   */
  observe (candidate: Counts, stable: Counts): void {
    if (!validCounts(candidate) || !validCounts(stable)) throw new RangeError('CountRatioTest: invalid counts')
    const m = candidate.events + stable.events
    if (candidate.requests === 0 || stable.requests === 0 || m === 0) return
    const s = candidate.requests / (candidate.requests + stable.requests)
    for (let i = 0; i < this.ratios.length; i++) {
      this.#logLR[i]! += candidate.events * this.#logRatios[i]! - m * Math.log1p(s * (this.ratios[i]! - 1))
    }
    this.#intervals++
  }

  /** log of the e-value (the mixture of the grid's likelihood ratios); 0 before any information. */
  get logEValue (): number {
    let max = -Infinity
    for (const l of this.#logLR) if (l > max) max = l
    let sum = 0
    for (const l of this.#logLR) sum += Math.exp(l - max)
    return max + Math.log(sum) + this.#logWeight
  }

  /** The e-value: reject "candidate no worse" at level α once it is ≥ 1/α. */
  get eValue (): number { return Math.exp(this.logEValue) }
}
