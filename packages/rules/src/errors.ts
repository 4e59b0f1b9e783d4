// Coded errors of @flowtag/rules, on the shared FlowTagError base.
import { FlowTagError, type FlowTagErrorOptions } from '@flowtag/errors'

/** One issue found in a rule document: where (a zod path joined with dots) and what. */
export interface RuleIssue {
  path: string
  message: string
}

export const errorCodes = {
  /** The document is not JSON or does not satisfy the RuleSet schema. */
  INVALID: 'FLOWTAG_RULES_INVALID',
  /** Options passed to a RuleStore or a source are wrong (the message names the field). */
  BAD_OPTION: 'FLOWTAG_RULES_BAD_OPTION',
  /** A source could not deliver a document (unreachable, missing, read error). */
  SOURCE: 'FLOWTAG_RULES_SOURCE',
  /** The last-good cache file could not be read or written. */
  CACHE: 'FLOWTAG_RULES_CACHE',
  /** A document about to be published carries a lease that has already run out (`issues` name the fields). */
  LEASE_EXPIRED: 'FLOWTAG_RULES_LEASE_EXPIRED',
  /** A document about to be published does not replace the one in force: its version is not above it, or the one in force is invalid (`checkPublish`; `--force` overrides). */
  PUBLISH_REFUSED: 'FLOWTAG_RULES_PUBLISH_REFUSED'
} as const

export type RulesErrorCode = typeof errorCodes[keyof typeof errorCodes]

/** Every error @flowtag/rules throws or reports; `issues` lists what a rejected document got wrong. */
export class RulesError extends FlowTagError {
  static override readonly brand: string = 'flowtag.rules.error'
  declare readonly code: RulesErrorCode
  readonly issues: RuleIssue[]

  constructor (code: RulesErrorCode, message: string, options?: FlowTagErrorOptions & { issues?: RuleIssue[] }) {
    super(code, message, options)
    this.issues = options?.issues ?? []
  }
}
