// Which outbound HTTP methods a shadow flow may send: one rule for every client flowtag guards
// (the outbound dispatcher, global fetch, the service presets), so a shadow never writes.

/** Methods a shadow flow may always send: the safe ones of RFC 9110 §9.2.1. */
export const SHADOW_SAFE_METHODS: readonly string[] = Object.freeze(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

const SAFE = new Set(SHADOW_SAFE_METHODS)

/**
 * Whether a shadow flow may send `method`: GET, HEAD, OPTIONS and TRACE always; any other only
 * when listed in `allowed` (e.g. `['PUT', 'DELETE']` for services whose PUT and DELETE do not
 * write anything a shadow must not touch). Case-insensitive.
 *
 * @param method the request's method
 * @param allowed extra methods the user declared safe in shadows @default none
 */
export function shadowAllowsMethod (method: string, allowed?: ReadonlySet<string>): boolean {
  if (SAFE.has(method)) return true
  const upper = method.toUpperCase()
  return SAFE.has(upper) || allowed?.has(upper) === true
}
