// Coded errors of @flowtag/grpc, on the shared FlowTagError base. Routing failures of a call
// keep @flowtag/outbound's codes (the same lane rules); they reach the caller as a gRPC status
// UNAVAILABLE whose metadata carries the code (see ROUTING_ERROR_KEY).
import { FlowTagError, type FlowTagErrorOptions } from '@flowtag/errors'

export const errorCodes = {
  /** Options are invalid (the message names the field). */
  BAD_OPTION: 'FLOWTAG_GRPC_BAD_OPTION',
  /** A `nacos:` target that cannot be parsed, or names another namespace. */
  BAD_TARGET: 'FLOWTAG_GRPC_BAD_TARGET',
  /** A `nacos:` channel made without `FlowTagGrpc#clientOptions()` (no Discovery to resolve it). */
  NOT_CONFIGURED: 'FLOWTAG_GRPC_NOT_CONFIGURED',
  /** The gRPC server could not bind its address. */
  BIND_FAILED: 'FLOWTAG_GRPC_BIND_FAILED'
} as const

export type GrpcErrorCode = typeof errorCodes[keyof typeof errorCodes]

/** Every error @flowtag/grpc throws; `instanceof` holds across duplicate installs. */
export class GrpcError extends FlowTagError {
  static override readonly brand: string = 'flowtag.grpc.error'
  declare readonly code: GrpcErrorCode

  constructor (code: GrpcErrorCode, message: string, options?: FlowTagErrorOptions) {
    super(code, message, options)
  }
}

/** Metadata key of a failed call's status that holds the flowtag error code. */
export const ROUTING_ERROR_KEY = 'x-flowtag-error'
