// Coded errors of @flowtag/nacos, on the shared FlowTagError base. Codes are stable; the README lists them.
import { badOption as sharedBadOption, FlowTagError, type FlowTagErrorOptions } from '@flowtag/errors'

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

/**
 * Every error of @flowtag/nacos: a `FlowTagError` with a stable `code` (`errorCodes`, one of
 * `FLOWTAG_NACOS_*`), `statusCode` when a server answered, and `cause`. `instanceof` holds across
 * two installed copies (brand check). Refusals are the subclass `NacosAuthError` (`reason`).
 */
export class NacosError extends FlowTagError {
  static override readonly brand: string = 'flowtag.nacos.error'
  declare readonly code: NacosErrorCode

  /** `statusCode` is the HTTP status when a server answered. */
  constructor (code: NacosErrorCode, message: string, options: FlowTagErrorOptions = {}) {
    super(code, message, options)
  }
}

/** Why Nacos refused: no credentials given, the login refused, or the logged-in user not allowed. */
export type AuthReason = 'missing' | 'refused' | 'forbidden'

/**
 * `FLOWTAG_NACOS_AUTH`, said once with what to fix: which credential is missing or refused and
 * where it is set (`reason`; `statusCode` 403 as Nacos answers, or the login's status).
 */
export class NacosAuthError extends NacosError {
  static override readonly brand: string = 'flowtag.nacos.auth'
  readonly reason: AuthReason
  constructor (reason: AuthReason, message: string, options: { cause?: unknown, statusCode?: number } = {}) {
    super(errorCodes.AUTH, message, options)
    this.reason = reason
  }
}

const CREDENTIALS_HINT = 'the Nacos client options username/password (or the environment variables NACOS_USERNAME/NACOS_PASSWORD, which the flowtag presets and CLIs read)'

/**
 * The one auth error of a refusal: `server` the origin, `what` the refused call and Nacos's answer,
 * `username` the user logged in as (undefined: the client has no credentials).
 */
export function authError (server: string, what: string, username: string | undefined, namespace: string, cause?: unknown, statusCode = 403): NacosAuthError {
  if (username === undefined) {
    return new NacosAuthError('missing', `Nacos at ${server} requires a login and this client has no credentials (${what}): set ${CREDENTIALS_HINT}`, { cause, statusCode })
  }
  return new NacosAuthError(
    'forbidden',
    `Nacos at ${server} refused user "${username}" (${what}): the user has no permission on namespace "${namespace === '' ? 'public' : namespace}"; grant it a role there, or use another user (${CREDENTIALS_HINT})`,
    { cause, statusCode }
  )
}

/** The login itself was refused (wrong user or password, or no such user). */
export function loginRefused (server: string, username: string, detail: string, statusCode: number, cause?: unknown): NacosAuthError {
  return new NacosAuthError('refused', `Nacos at ${server} refused the login of user "${username}" (${detail}): check the password and that the user exists; set in ${CREDENTIALS_HINT}`, { cause, statusCode })
}

export function badOption (field: string, message: string, path?: Array<string | number>): NacosError {
  const bad = sharedBadOption('@flowtag/nacos', field, message, path)
  return new NacosError(errorCodes.BAD_OPTION, bad.message, bad)
}

export function badArgument (field: string, message: string): NacosError {
  return new NacosError(errorCodes.BAD_ARGUMENT, `@flowtag/nacos: invalid argument "${field}": ${message}`)
}
