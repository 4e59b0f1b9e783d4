// Coded errors of @flowtag/canary. Codes are stable; the README lists them.
import { FlowTagError } from '@flowtag/errors'

export const PACKAGE = '@flowtag/canary'

export const errorCodes = {
  /** An option or the Canary spec is invalid; the message names the field. */
  BAD_OPTION: 'FLOWTAG_CANARY_BAD_OPTION',
  /** The RuleSet in Nacos is missing or invalid, so no step can be derived from it. */
  NO_RULES: 'FLOWTAG_CANARY_NO_RULES',
  /** A canary for this service already runs (start), or none does (status, promote, ...). */
  CONFLICT: 'FLOWTAG_CANARY_CONFLICT',
  /** The command does not apply in the canary's current state (e.g. promote a rolled-back one). */
  BAD_STATE: 'FLOWTAG_CANARY_BAD_STATE',
  /** `start`: no instance of the service is registered in the candidate lane, so nothing could be judged. */
  NO_CANDIDATE: 'FLOWTAG_CANARY_NO_CANDIDATE',
  /** The dashboard/API token is missing or wrong. */
  UNAUTHORIZED: 'FLOWTAG_CANARY_UNAUTHORIZED',
  /** The metrics source (Prometheus) cannot be reached or answers an error: no data, never a pass. */
  METRICS_UNAVAILABLE: 'FLOWTAG_CANARY_METRICS_UNAVAILABLE'
} as const

export type CanaryErrorCode = typeof errorCodes[keyof typeof errorCodes]

export class CanaryError extends FlowTagError {
  static override readonly brand: string = 'flowtag.canary.error'
  declare readonly code: CanaryErrorCode

  constructor (code: CanaryErrorCode, message: string, options?: { cause?: unknown, statusCode?: number }) {
    super(code, message, options)
  }
}
