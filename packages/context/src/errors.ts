// Coded errors of @flowtag/context, on the shared FlowTagError base.
import { FlowTagError, type FlowTagErrorOptions } from '@flowtag/errors'

export const errorCodes = {
  /** Plugin / middleware options are invalid (the message names the field). */
  BAD_OPTION: 'FLOWTAG_CONTEXT_BAD_OPTION',
  /** signTag() was given a bad lane, ttl or key. */
  SIGNING: 'FLOWTAG_CONTEXT_SIGNING',
  /** Strict tag-loss mode: an outbound call left without the request's flow, or with another tag. */
  TAG_LOST: 'FLOWTAG_CONTEXT_TAG_LOST'
} as const

export type ContextErrorCode = typeof errorCodes[keyof typeof errorCodes]

/** Every error @flowtag/context throws; `instanceof` holds across duplicate installs. */
export class ContextError extends FlowTagError {
  static override readonly brand: string = 'flowtag.context.error'
  declare readonly code: ContextErrorCode

  constructor (code: ContextErrorCode, message: string, options?: FlowTagErrorOptions) {
    super(code, message, options)
  }
}
