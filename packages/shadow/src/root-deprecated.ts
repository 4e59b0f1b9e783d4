// Names the root exported that only the package's own comparer and tests use: the same
// functions, deprecated, for one minor version.
import * as pattern from './pattern.ts'

/** @deprecated Internal to the comparer (patterns are strings in `ignore`); removed from the root in the next minor version. */
export const parsePointer: typeof pattern.parsePointer = pattern.parsePointer
/** @deprecated Internal to the comparer; removed from the root in the next minor version. */
export const toPointer: typeof pattern.toPointer = pattern.toPointer
/** @deprecated Internal to the comparer; removed from the root in the next minor version. */
export const matchesPattern: typeof pattern.matchesPattern = pattern.matchesPattern
