// The per-service policies of every transport (warm-up, retry budget): one zod schema, used by
// the HTTP dispatcher's options and @flowtag/grpc's, and how a service's own settings combine
// with the defaults.
import { z } from 'zod'
import { DEFAULT_RETRY_BUDGET, type RetryBudgetPolicy } from './retry-budget.ts'
import { DEFAULT_WARMUP, type WarmupPolicy } from './warmup.ts'

const warmupFields = {
  /** Length of the ramp, in ms (at most an hour). */
  windowMs: z.number().int().min(1).max(3_600_000),
  /** Share of its weight a new instance starts with, 1–100 %. */
  minWeightPercent: z.number().min(1).max(100),
  /** Curve exponent (> 0, ≤ 10): 1 linear, 2 faster at first, 0.5 quadratic (slower at first). */
  aggression: z.number().gt(0).max(10)
}

const budgetFields = {
  /** Retries allowed, as a percentage of the original requests of the interval (0–1000). */
  percent: z.number().min(0).max(1000),
  /** The sliding interval requests and retries are counted over, in ms (100 ms – 10 min). */
  intervalMs: z.number().int().min(100).max(600_000),
  /** Retries always allowed per second, however few the requests (0–10000). */
  minRetriesPerSecond: z.number().min(0).max(10_000)
}

const warmupObject = z.strictObject({
  windowMs: warmupFields.windowMs.default(DEFAULT_WARMUP.windowMs),
  minWeightPercent: warmupFields.minWeightPercent.default(DEFAULT_WARMUP.minWeightPercent),
  aggression: warmupFields.aggression.default(DEFAULT_WARMUP.aggression)
})

const budgetObject = z.strictObject({
  percent: budgetFields.percent.default(DEFAULT_RETRY_BUDGET.percent),
  intervalMs: budgetFields.intervalMs.default(DEFAULT_RETRY_BUDGET.intervalMs),
  minRetriesPerSecond: budgetFields.minRetriesPerSecond.default(DEFAULT_RETRY_BUDGET.minRetriesPerSecond)
})

/** `warmup`: `{ windowMs?, minWeightPercent?, aggression? }` or `false` (off). Default: on, DEFAULT_WARMUP. */
export const warmupSchema = z
  .union([z.literal(false), warmupObject], { error: 'expected false (off) or { windowMs?, minWeightPercent?, aggression? }' })
  .prefault({})

/** `retryBudget`: `{ percent?, intervalMs?, minRetriesPerSecond? }` or `false` (off). Default: on, DEFAULT_RETRY_BUDGET. */
export const retryBudgetSchema = z
  .union([z.literal(false), budgetObject], { error: 'expected false (off) or { percent?, intervalMs?, minRetriesPerSecond? }' })
  .prefault({})

/** One service's own settings: each field given replaces the dispatcher-wide one; `false` turns it off. */
const serviceSchema = z.strictObject({
  warmup: z.union([z.literal(false), z.strictObject({ windowMs: warmupFields.windowMs.optional(), minWeightPercent: warmupFields.minWeightPercent.optional(), aggression: warmupFields.aggression.optional() })], { error: 'expected false (off) or { windowMs?, minWeightPercent?, aggression? }' }).optional(),
  retryBudget: z.union([z.literal(false), z.strictObject({ percent: budgetFields.percent.optional(), intervalMs: budgetFields.intervalMs.optional(), minRetriesPerSecond: budgetFields.minRetriesPerSecond.optional() })], { error: 'expected false (off) or { percent?, intervalMs?, minRetriesPerSecond? }' }).optional()
})

/** `services`: per service name, settings over the dispatcher-wide `warmup` and `retryBudget`. */
export const servicePoliciesSchema = z.record(z.string().min(1), serviceSchema).default({})

export type ServicePolicies = z.output<typeof servicePoliciesSchema>

/** The policies of one service. */
export interface Policies {
  warmup: WarmupPolicy | false
  retryBudget: RetryBudgetPolicy | false
}

/**
 * The policies of `service`: its own settings (`services[service]`) over the dispatcher-wide
 * ones; a service that turns on what is off dispatcher-wide starts from the defaults.
 */
export function policiesFor (service: string, o: { warmup: WarmupPolicy | false; retryBudget: RetryBudgetPolicy | false; services: ServicePolicies }): Policies {
  const own = Object.hasOwn(o.services, service) ? o.services[service] : undefined
  return {
    warmup: merge(o.warmup, own?.warmup, DEFAULT_WARMUP),
    retryBudget: merge(o.retryBudget, own?.retryBudget, DEFAULT_RETRY_BUDGET)
  }
}

function merge<P extends object> (wide: P | false, own: Partial<P> | false | undefined, defaults: Readonly<P>): P | false {
  if (own === undefined) return wide
  if (own === false) return false
  const base = wide === false ? defaults : wide
  const out = { ...base }
  for (const [k, v] of Object.entries(own)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}
