// Coded errors of @flowtag/outbound. Routing failures carry statusCode 503 so an app's error
// handler can answer "Service Unavailable" without knowing this package's codes.

export type OutboundErrorCode =
  | 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE'
  | 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE'
  | 'FLOWTAG_OUTBOUND_ALL_EJECTED'
  | 'FLOWTAG_OUTBOUND_DISCOVERY_FAILED'
  | 'FLOWTAG_OUTBOUND_CLOSED'

/** A request could not be routed to any instance. */
export class OutboundError extends Error {
  readonly code: OutboundErrorCode
  readonly statusCode = 503
  readonly service: string
  /** The lane that was asked for (the tag, or the stable lane for untagged traffic). */
  readonly lane: string | undefined

  constructor(code: OutboundErrorCode, message: string, service: string, lane?: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'OutboundError'
    this.code = code
    this.service = service
    this.lane = lane
  }
}

/** Options given to the dispatcher or the plugin are invalid; the message names the field. */
export class InvalidOptionsError extends TypeError {
  readonly code = 'FLOWTAG_OUTBOUND_INVALID_OPTIONS'

  constructor(message: string) {
    super(message)
    this.name = 'InvalidOptionsError'
  }
}

export const errorCodes = {
  UNKNOWN_SERVICE: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE',
  NO_INSTANCE_IN_LANE: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE',
  ALL_EJECTED: 'FLOWTAG_OUTBOUND_ALL_EJECTED',
  DISCOVERY_FAILED: 'FLOWTAG_OUTBOUND_DISCOVERY_FAILED',
  CLOSED: 'FLOWTAG_OUTBOUND_CLOSED',
  INVALID_OPTIONS: 'FLOWTAG_OUTBOUND_INVALID_OPTIONS'
} as const
