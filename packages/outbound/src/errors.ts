// Coded errors of @flowtag/outbound, on the shared FlowTagError base. Routing failures carry
// statusCode 503 so an app's error handler can answer "Service Unavailable" without knowing
// this package's codes.
import { FlowTagError, type FlowTagErrorOptions } from '@flowtag/errors'

export const errorCodes = {
  UNKNOWN_SERVICE: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE',
  NO_INSTANCE_IN_LANE: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE',
  ALL_EJECTED: 'FLOWTAG_OUTBOUND_ALL_EJECTED',
  DISCOVERY_FAILED: 'FLOWTAG_OUTBOUND_DISCOVERY_FAILED',
  CLOSED: 'FLOWTAG_OUTBOUND_CLOSED',
  BAD_OPTION: 'FLOWTAG_OUTBOUND_BAD_OPTION',
  /** A shadow flow (a mirrored copy) tried to send a method that may write: refused, never sent. */
  SHADOW_WRITE_REFUSED: 'FLOWTAG_SHADOW_WRITE_REFUSED'
} as const

export type OutboundErrorCode = typeof errorCodes[keyof typeof errorCodes]

/** A request could not be routed (statusCode 503), or options were invalid (no statusCode). */
export class OutboundError extends FlowTagError {
  static override readonly brand: string = 'flowtag.outbound.error'
  declare readonly code: OutboundErrorCode
  readonly service: string
  /** The lane that was asked for (the tag, or the stable lane for untagged traffic). */
  readonly lane: string | undefined

  constructor (code: OutboundErrorCode, message: string, service: string, lane?: string, options?: FlowTagErrorOptions) {
    super(code, message, { ...options, statusCode: code === errorCodes.BAD_OPTION ? undefined : code === errorCodes.SHADOW_WRITE_REFUSED ? 403 : 503 })
    this.service = service
    this.lane = lane
  }
}
