// The options of the sequential judge (`spec.sequential`), validated with the rest of the spec.
// Kept apart from spec.ts so the judge can import its schema without an import cycle.
import { z } from 'zod'

const share = z.number().min(0).max(1)
const ratio = z.number().gt(1).max(100)
const action = z.enum(['pause', 'rollback'])

export const SequentialSpecSchema = z.strictObject({
  /**
   * Bound on the probability that a candidate as good as stable is ever rolled back by the
   * tests, over every check of the canary; the error test and the latency test get half each.
   */
  alpha: z.number().gt(0).max(0.2).default(0.01),
  /** Errors (5xx and network errors) per request, candidate against stable. */
  errors: z.strictObject({
    /** Smallest ratio of error rates (candidate / stable) the test looks for. */
    minRatio: ratio.default(1.5),
    /** A rollback also needs the candidate's error share to exceed stable's by this much (0.001 = 0.1 points). */
    minIncrease: share.default(0.001),
    action: action.default('rollback')
  }).prefault({}),
  /** The share of requests slower than a bucket bound, candidate against stable. */
  latency: z.strictObject({
    /** The bound is the smallest bucket bound at or above stable's `quantile` (from its earlier intervals) ... */
    quantile: z.number().min(0.5).max(0.999).default(0.9),
    /** ... or the smallest bucket bound at or above this (an SLO), in seconds. */
    thresholdSeconds: z.number().positive().max(3600).optional(),
    /** Smallest ratio of slow shares (candidate / stable) the test looks for. */
    minRatio: ratio.default(1.5),
    /** A rollback also needs the candidate's slow share to exceed stable's by this much (0.02 = 2 points). */
    minIncrease: share.default(0.02),
    action: action.default('rollback')
  }).prefault({})
})

export type SequentialSpec = z.output<typeof SequentialSpecSchema>
