// Coded errors of @flowtag/shadow, on the shared FlowTagError base. Codes are stable; the README lists them.
import { FlowTagError, type FlowTagErrorOptions } from '@flowtag/errors'

export const PACKAGE = '@flowtag/shadow'

export const errorCodes = {
  /** createShadowComparer() options are invalid; the message (and `field`) names the field. */
  BAD_OPTION: 'FLOWTAG_SHADOW_BAD_OPTION',
  /** compare() was given a pair that is not a ShadowPair; the message (and `field`) names the field. */
  BAD_PAIR: 'FLOWTAG_SHADOW_BAD_PAIR'
} as const

export type ShadowErrorCode = typeof errorCodes[keyof typeof errorCodes]

/** Every error @flowtag/shadow throws; `instanceof` holds across duplicate installs. */
export class ShadowError extends FlowTagError {
  static override readonly brand: string = 'flowtag.shadow.error'
  declare readonly code: ShadowErrorCode

  constructor (code: ShadowErrorCode, message: string, options?: FlowTagErrorOptions) {
    super(code, message, options)
  }
}
