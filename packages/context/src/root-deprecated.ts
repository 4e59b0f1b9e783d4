// The plumbing names the root exported before `@flowtag/context/internals` existed: the same
// values, deprecated, so imports from the root keep working for one minor version.
import * as internals from './internals.ts'

/** @deprecated Import it from `@flowtag/context/internals` (or use `LANE_PATTERN` from `@flowtag/rules`); removed from the root in the next minor version. */
export const TAG_PATTERN: RegExp = internals.TAG_PATTERN
/** @deprecated Import it from `@flowtag/context/internals`; removed from the root in the next minor version. */
export const parseBaggage: typeof internals.parseBaggage = internals.parseBaggage
/** @deprecated Import it from `@flowtag/context/internals`; removed from the root in the next minor version. */
export type BaggageEntry = internals.BaggageEntry
/** @deprecated Import it from `@flowtag/context/internals`; removed from the root in the next minor version. */
export const recordFallback: typeof internals.recordFallback = internals.recordFallback
/** @deprecated Import it from `@flowtag/context/internals`; removed from the root in the next minor version. */
export const mergeFallback: typeof internals.mergeFallback = internals.mergeFallback
/** @deprecated Import it from `@flowtag/context/internals`; removed from the root in the next minor version. */
export const fallbackOf: typeof internals.fallbackOf = internals.fallbackOf
/** @deprecated Import it from `@flowtag/context/internals`; removed from the root in the next minor version. */
export const MAX_FALLBACK_ENTRIES: number = internals.MAX_FALLBACK_ENTRIES
/** @deprecated Import it from `@flowtag/context/internals`; removed from the root in the next minor version. */
export const MAX_FALLBACK_LENGTH: number = internals.MAX_FALLBACK_LENGTH
/** @deprecated Import it from `@flowtag/context/internals`; removed from the root in the next minor version. */
export type FallbackReason = internals.FallbackReason
