// The comparer's options, validated once at the boundary with zod; a bad one is a coded error
// naming its field.
import type { Meter } from '@opentelemetry/api'
import { describeBadOption } from '@flowtag/errors'
import { z } from 'zod'
import { errorCodes, PACKAGE, ShadowError } from './errors.ts'

const pointerPattern = z.string().max(1024).refine((s) => s === '' || s.startsWith('/'), { message: 'must be a JSON pointer ("" or starting with "/")' })

const meterSchema = z.custom<Meter>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Meter).createCounter === 'function',
  { message: 'expected an OpenTelemetry Meter' }
)

/** How a value at a path is rewritten on both sides before they are compared. */
export const NormalizeRuleSchema = z.union([
  /** Numbers rounded to `round` decimals. */
  z.strictObject({ path: pointerPattern, round: z.number().int().min(0).max(15) }),
  /** `trim` / `lowercase`: strings; `sorted`: arrays in a canonical order; `length`: a string's or array's length; `type`: only the JSON type is compared. */
  z.strictObject({ path: pointerPattern, as: z.enum(['trim', 'lowercase', 'sorted', 'length', 'type']) })
])

export type NormalizeRule = z.output<typeof NormalizeRuleSchema>

export const LearnSchema = z.strictObject({
  /** Secondary answers a route needs before its pairs are judged. */
  samples: z.number().int().min(1).max(100_000).default(20),
  /** Share of pairs asked for a secondary once a route has `samples` of them. */
  rate: z.number().min(0).max(1).default(0.05),
  /** A field is noise when its primary-vs-secondary difference rate is at least its primary-vs-mirror rate minus this. */
  margin: z.number().min(0).max(1).default(0.05)
})

export const ShadowOptionsSchema = z.strictObject({
  /** Where the counters go; default: the global MeterProvider's meter `@flowtag/shadow` (a no-op until the app installs one). */
  meter: meterSchema.optional(),
  /** Response headers compared (case-insensitive). */
  headers: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header name')).max(100).default([]).transform((h) => h.map((n) => n.toLowerCase())),
  /** Bytes of each body compared; a longer or truncated body is compared byte for byte up to here, not as JSON. */
  maxBodyBytes: z.number().int().min(1).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Declared noise: JSON-pointer patterns of body fields never compared (`*` one segment, `**` any depth). */
  ignore: z.array(pointerPattern).max(500).default([]),
  /** Declared normalisation: values at these patterns rewritten on both sides first. */
  normalize: z.array(NormalizeRuleSchema).max(500).default([]),
  /** Learned noise (a second answer of the primary's lane); `false`: declared noise only, every pair judged at once. */
  learn: z.union([z.literal(false), LearnSchema]).prefault({}),
  /** Routes (service, route, lane) kept; pairs of further ones are counted under the route `(other)`. */
  maxRoutes: z.number().int().min(1).max(100_000).default(1000),
  /** Distinct field paths kept per route; further ones are counted under the field `(other)`. */
  maxFields: z.number().int().min(1).max(10_000).default(100)
})

export type ShadowOptionsInput = z.input<typeof ShadowOptionsSchema>
export type ShadowOptions = z.output<typeof ShadowOptionsSchema>

/**
 * Validate the comparer's options and fill in the defaults.
 * @throws {ShadowError} `FLOWTAG_SHADOW_BAD_OPTION` naming the field (`learn.samples`, `ignore.2`).
 */
export function parseShadowOptions (input: unknown): ShadowOptions {
  const parsed = ShadowOptionsSchema.safeParse(input ?? {})
  if (!parsed.success) {
    const bad = describeBadOption(PACKAGE, parsed.error, { schema: ShadowOptionsSchema })
    throw new ShadowError(errorCodes.BAD_OPTION, bad.message, bad)
  }
  return parsed.data
}
