const kBrand = Symbol.for('flowtag.context.error')

/** Every error @flowtag/context throws carries a stable `code` (see README, Errors). */
export class ContextError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ContextError'
    this.code = code
    Object.defineProperty(this, kBrand, { value: true })
  }

  /** `instanceof` that also works across two installed copies of this package. */
  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true
  }
}

export const ErrorCodes = {
  /** Plugin / middleware options are invalid (the message names the field). */
  OPTIONS: 'FLOWTAG_CONTEXT_OPTIONS',
  /** signTag() was given a bad lane, ttl or key. */
  SIGNING: 'FLOWTAG_CONTEXT_SIGNING'
} as const
