// The one error shape of every @flowtag package: a stable `code` (FLOWTAG_<AREA>_<WHAT>) and a
// `Symbol.for` brand, so `instanceof` holds even when an app ends up with two copies installed.
const kBrands = Symbol.for('flowtag.error.brands')

export interface FlowTagErrorOptions {
  cause?: unknown
  /** HTTP status an app's error handler should answer with (Fastify reads `statusCode`). */
  statusCode?: number
  /** A bad option's dotted field path (`registration.drainMs`); see `describeBadOption`. */
  field?: string
  /** The same path as segments; defaults to `field` split at its dots. */
  path?: ReadonlyArray<string | number>
  /** A bad option's problem, without the field (`expected number, received string`). */
  problem?: string
}

/**
 * Base class of every error a flowtag package throws or reports.
 *
 * `code` is stable and listed in each package's README (errors table); `message` is for people.
 * Subclasses set `static brand` to a registry-wide string so their own `instanceof` also holds
 * across duplicate installs.
 */
export class FlowTagError extends Error {
  static readonly brand: string = 'flowtag.error'
  /** `FLOWTAG_<AREA>_<WHAT>`, e.g. `FLOWTAG_NACOS_BAD_OPTION`. */
  readonly code: string
  /** HTTP status to answer with, when the error is the platform's (e.g. 503 for no instance). */
  readonly statusCode: number | undefined
  /** On a bad-option error: the bad field's dotted path, as the user wrote it. */
  readonly field: string | undefined
  /** On a bad-option error: the bad field's path as segments. */
  readonly path: ReadonlyArray<string | number> | undefined
  /** On a bad-option error: what is wrong with the field. */
  readonly problem: string | undefined

  constructor (code: string, message: string, options: FlowTagErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.statusCode = options.statusCode
    this.field = options.field
    this.path = options.path ?? options.field?.split('.')
    this.problem = options.problem
  }

  /** The brands of this error's class chain (read through the Symbol.for key, not the class). */
  get [kBrands] (): string[] {
    const brands: string[] = []
    for (let c = this.constructor as { brand?: string } | null; c !== null && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
      if (typeof c.brand === 'string' && !brands.includes(c.brand)) brands.push(c.brand)
    }
    return brands
  }

  static override [Symbol.hasInstance] (value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false
    const brands = (value as Record<symbol, unknown>)[kBrands]
    return Array.isArray(brands) && brands.includes(this.brand)
  }
}

/** True when `value` is a flowtag error, optionally with the given code. */
export function isFlowTagError (value: unknown, code?: string): value is FlowTagError {
  return value instanceof FlowTagError && (code === undefined || value.code === code)
}

// The names before the product's casing was made one (`FlowTag`, as in FlowTagDispatcher): the
// same class and function, so `instanceof`, `extends` and `catch` code keep working unchanged.

/** @deprecated Use `FlowTagError` (the same class; `instanceof` holds both ways). Removed in the next minor version. */
export const FlowtagError: typeof FlowTagError = FlowTagError
/** @deprecated Use `FlowTagError`. Removed in the next minor version. */
export type FlowtagError = FlowTagError
/** @deprecated Use `isFlowTagError` (the same function). Removed in the next minor version. */
export const isFlowtagError: typeof isFlowTagError = isFlowTagError
/** @deprecated Use `FlowTagErrorOptions`. Removed in the next minor version. */
export type FlowtagErrorOptions = FlowTagErrorOptions
