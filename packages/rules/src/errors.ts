/** One issue found in a rule document: where (a zod path joined with dots) and what. */
export interface RuleIssue {
  path: string
  message: string
}

const kBrand = Symbol.for('flowtag.rules.error')

/** Every error @flowtag/rules throws or reports carries a stable `code` (see README, Errors). */
export class RulesError extends Error {
  readonly code: string
  readonly issues: RuleIssue[]

  constructor (code: string, message: string, options?: { cause?: unknown, issues?: RuleIssue[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'RulesError'
    this.code = code
    this.issues = options?.issues ?? []
    Object.defineProperty(this, kBrand, { value: true })
  }

  /** `instanceof` that also works across two installed copies of this package. */
  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true
  }
}

export const ErrorCodes = {
  /** The document is not JSON or does not satisfy the RuleSet schema. */
  INVALID: 'FLOWTAG_RULES_INVALID',
  /** Options passed to a RuleStore or a source are wrong. */
  OPTIONS: 'FLOWTAG_RULES_OPTIONS',
  /** A source could not deliver a document (unreachable, missing, read error). */
  SOURCE: 'FLOWTAG_RULES_SOURCE',
  /** The last-good cache file could not be read or written. */
  CACHE: 'FLOWTAG_RULES_CACHE'
} as const
