// The names the root exported before `@flowtag/canary/internals` existed (used by tests, or by
// nothing outside the package): the same values, deprecated, for one minor version.
import * as internals from './internals.ts'

/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const readRules: typeof internals.readRules = internals.readRules
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const publishRules: typeof internals.publishRules = internals.publishRules
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const wilsonLower: typeof internals.wilsonLower = internals.wilsonLower
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const candidateWeight: typeof internals.candidateWeight = internals.candidateWeight
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const CANARY_RULE: string = internals.CANARY_RULE
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const laneWindow: typeof internals.laneWindow = internals.laneWindow
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const figuresFromText: typeof internals.figuresFromText = internals.figuresFromText
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const stateDataId: typeof internals.stateDataId = internals.stateDataId
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const commandDataId: typeof internals.commandDataId = internals.commandDataId
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const TERMINAL: typeof internals.TERMINAL = internals.TERMINAL
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const quantile: typeof internals.quantile = internals.quantile
/** @deprecated Import it from `@flowtag/canary/internals`; removed from the root in the next minor version. */
export const summarize: typeof internals.summarize = internals.summarize
