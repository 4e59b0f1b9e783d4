// Warm-up (slow start): a new instance's weight ramps up over a window instead of starting at
// full share while its JIT is cold. Envoy's curve: weight × max(minWeightPercent, (t/window)^(1/
// aggression)). The ramp starts from the later of the start time the instance publishes in its
// metadata (clamped to now) and the moment this caller first saw it arrive; instances already
// listed when the caller first looked at the service were not seen arriving, so their published
// time alone counts. Transport-neutral: the HTTP service table and the gRPC balancer keep a
// WarmupState per member and hand `warmFrom` to the LaneIndex, which applies the curve (and the
// "more than half of the lane warming" guard) when it is built; a pick never computes it.
import type { Instance } from './discovery.ts'

/**
 * Instance metadata key of the moment the instance started listening, epoch milliseconds as a
 * decimal string. @flowtag/nacos's NacosRegistration publishes it (presets, gRPC servers,
 * message consumers).
 */
export const STARTED_AT_METADATA = 'flowtag.startedAt'

/** Warm-up policy (the `warmup` option), or false when off. */
export interface WarmupPolicy {
  /** Length of the ramp, in ms. */
  windowMs: number
  /** Weight share a warming instance starts at, 0–100 (Envoy's min_weight_percent). */
  minWeightPercent: number
  /** Curve exponent: 1 is linear; higher ramps faster at first (Envoy's aggression). */
  aggression: number
}

/** Defaults: a 60 s linear ramp from 10 % (Envoy's curve and floor, TSF's window). */
export const DEFAULT_WARMUP: Readonly<WarmupPolicy> = Object.freeze({ windowMs: 60_000, minWeightPercent: 10, aggression: 1 })

/** What a member keeps (fields on the member, as OutlierState). */
export interface WarmupState {
  /** The instance's published start time as listed (raw), to notice a restart on the same address. */
  startedAt: string | undefined
  /** Epoch ms the ramp counts from; -Infinity when the instance is not warming. */
  warmFrom: number
}

/** The published start time, or undefined when absent or not a finite number. */
function published (raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined
  const n = Number(raw)
  return Number.isFinite(n) ? n : undefined
}

/**
 * The warm-up state of a member seen for the first time. `arriving`: it was not in the caller's
 * first list of the service (the caller saw it arrive, so the ramp starts now at the earliest).
 * A start time in the future (a skewed or forged clock) counts as now: one window at most.
 */
export function freshWarmupState (instance: Instance, arriving: boolean, now: number = Date.now()): WarmupState {
  const raw = instance.metadata[STARTED_AT_METADATA]
  const at = published(raw)
  const from = at === undefined ? -Infinity : Math.min(at, now)
  return { startedAt: raw, warmFrom: arriving ? Math.max(from, now) : from }
}

/**
 * A listed member's instance changed: a new published start time is a restart on the same
 * address, warmed again from now. Returns true when the state changed.
 */
export function followWarmupState (state: WarmupState, instance: Instance, now: number = Date.now()): boolean {
  const raw = instance.metadata[STARTED_AT_METADATA]
  if (raw === state.startedAt) return false
  state.startedAt = raw
  state.warmFrom = now
  return true
}

/** Share of its weight a member warming since `warmFrom` gets at `now`: 1 once warm. */
export function warmupFactor (policy: WarmupPolicy, warmFrom: number, now: number): number {
  const elapsed = now - warmFrom
  if (!(elapsed < policy.windowMs)) return 1
  const t = elapsed <= 0 ? 0 : elapsed / policy.windowMs
  const curve = policy.aggression === 1 ? t : t ** (1 / policy.aggression)
  return Math.max(policy.minWeightPercent / 100, curve)
}

/** How often weights are recomputed while some member warms: every second, finer for short windows. */
export function warmupRefreshMs (policy: WarmupPolicy): number {
  return Math.max(50, Math.min(1000, Math.round(policy.windowMs / 20)))
}
