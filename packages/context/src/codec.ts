import { LANE_PATTERN } from '@flowtag/rules'
/** The header that carries a request's lane between hops. */
export const FLOW_TAG_HEADER = 'x-flow-tag'

/** The W3C baggage entry that carries the lane (and that OTel propagators carry too). */
export const BAGGAGE_KEY = 'flowtag.lane'

/** The tag grammar, a valid lane: 1-64 characters of [A-Za-z0-9._-] (the RuleSet's `LANE_PATTERN`, one definition). */
export const TAG_PATTERN = LANE_PATTERN

/**
 * Decode a tag from untrusted input. Anything that is not a string matching the grammar
 * (including arrays from repeated headers) is undefined, so it can never reach a log line,
 * a response or a routing decision in raw form.
 */
export function parseTag (value: unknown): string | undefined {
  return typeof value === 'string' && value.length <= 64 && TAG_PATTERN.test(value) ? value : undefined
}

/** The header that marks a shadow flow (a mirrored copy whose answer only gets compared): `1`. */
export const SHADOW_HEADER = 'x-flow-shadow'

/** The W3C baggage entry that marks a shadow flow: `flowtag.shadow=1`. */
export const SHADOW_BAGGAGE_KEY = 'flowtag.shadow'
