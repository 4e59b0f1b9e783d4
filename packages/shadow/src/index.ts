export type { ShadowAnswer, ShadowComparer, ShadowPair } from './contract.ts'
export { createShadowComparer, OTHER } from './comparer.ts'
export type { FieldCount, NoiseField, ReportOptions, RouteReport, ShadowCompare, ShadowReport } from './comparer.ts'
export { BODY_FIELD, STATUS_FIELD, headerField } from './diff.ts'
export { errorCodes, ShadowError, type ShadowErrorCode } from './errors.ts'
export type { NormalizeRule, ShadowOptions, ShadowOptionsInput } from './options.ts'
// Deprecated: the JSON-pointer helpers the comparer uses inside, exported by mistake; removed from
// the root in the next minor version (no replacement: write patterns as strings in `ignore`).
export { matchesPattern, parsePointer, toPointer } from './root-deprecated.ts'
