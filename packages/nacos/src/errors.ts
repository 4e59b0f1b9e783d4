// Coded errors of @flowtag/nacos, on the shared FlowtagError base. Codes are stable; the README lists them.
import { badOption as sharedBadOption, FlowtagError, type FlowtagErrorOptions } from '@flowtag/errors'

export const errorCodes = {
  /** Client or plugin options are invalid (the message names the field). */
  BAD_OPTION: 'FLOWTAG_NACOS_BAD_OPTION',
  /** A call's argument is invalid (service name, instance, dataId...). */
  BAD_ARGUMENT: 'FLOWTAG_NACOS_BAD_ARGUMENT',
  /** No server in the list answered. */
  UNREACHABLE: 'FLOWTAG_NACOS_UNREACHABLE',
  /** A server answered with an error status. */
  HTTP: 'FLOWTAG_NACOS_HTTP',
  /** Login failed or the token was refused. */
  AUTH: 'FLOWTAG_NACOS_AUTH',
  /** The server does not offer what was asked (API version, feature). */
  UNSUPPORTED: 'FLOWTAG_NACOS_UNSUPPORTED',
  /** The client is closed. */
  CLOSED: 'FLOWTAG_NACOS_CLOSED',
  /** A message is over a size limit: a gRPC answer or request (`grpcMaxMessageBytes`, or the server's), an HTTP v1 publish form over Nacos's 2 MiB. */
  TOO_LARGE: 'FLOWTAG_NACOS_TOO_LARGE',
  /** One request failed while its server stays up (an unreadable answer, a timeout on a healthy gRPC connection). */
  REQUEST_FAILED: 'FLOWTAG_NACOS_REQUEST_FAILED'
} as const

export type NacosErrorCode = typeof errorCodes[keyof typeof errorCodes]

export class NacosError extends FlowtagError {
  static override readonly brand: string = 'flowtag.nacos.error'
  declare readonly code: NacosErrorCode

  /** `statusCode` is the HTTP status when a server answered. */
  constructor (code: NacosErrorCode, message: string, options: FlowtagErrorOptions = {}) {
    super(code, message, options)
  }
}

export function badOption (field: string, message: string, path?: Array<string | number>): NacosError {
  const bad = sharedBadOption('@flowtag/nacos', field, message, path)
  return new NacosError(errorCodes.BAD_OPTION, bad.message, bad)
}

export function badArgument (field: string, message: string): NacosError {
  return new NacosError(errorCodes.BAD_ARGUMENT, `@flowtag/nacos: invalid argument "${field}": ${message}`)
}
