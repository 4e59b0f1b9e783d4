// Coded errors of @flowtag/nacos. Codes are stable; the README lists them.

export type NacosErrorCode =
  | 'FLOWTAG_NACOS_BAD_OPTION'
  | 'FLOWTAG_NACOS_BAD_ARGUMENT'
  | 'FLOWTAG_NACOS_UNREACHABLE'
  | 'FLOWTAG_NACOS_HTTP'
  | 'FLOWTAG_NACOS_AUTH'
  | 'FLOWTAG_NACOS_UNSUPPORTED'
  | 'FLOWTAG_NACOS_CLOSED'

const brand = Symbol.for('flowtag.nacos.error')

export class NacosError extends Error {
  readonly code: NacosErrorCode
  /** HTTP status when a server answered. */
  readonly statusCode: number | undefined

  constructor(code: NacosErrorCode, message: string, options: { cause?: unknown; statusCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'NacosError'
    this.code = code
    this.statusCode = options.statusCode
  }

  // instanceof that survives two installed copies of this package.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true
  }

  get [brand](): true {
    return true
  }
}

export function badOption(field: string, message: string): NacosError {
  return new NacosError('FLOWTAG_NACOS_BAD_OPTION', `invalid option "${field}": ${message}`)
}

export function badArgument(field: string, message: string): NacosError {
  return new NacosError('FLOWTAG_NACOS_BAD_ARGUMENT', `invalid argument "${field}": ${message}`)
}
