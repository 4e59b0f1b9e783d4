// Which outbound HTTP methods a shadow flow may send: one rule for every client flowtag guards
// (the outbound dispatcher, global fetch, the service presets), so a shadow never writes.
import type { FlowContext } from './flow.ts'

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

const kCopy = Symbol('flowtag.shadowCopy')

/**
 * The flow to send a mirrored copy in: a shadow in `lane`. The copy's own request (whatever its
 * method: a mirror may list POST) is not refused by the guards, since it is what makes the shadow;
 * every call the copy's handler makes downstream is a shadow and guarded.
 */
export function shadowCopyFlow (lane: string | undefined): FlowContext {
  const flow: FlowContext = lane === undefined ? { shadow: true, baggage: {} } : { tag: lane, shadow: true, baggage: {} }
  Object.defineProperty(flow, kCopy, { value: true })
  return flow
}

/** Whether `flow` is a mirror's own copy flow ({@link shadowCopyFlow}): its request is sent as is. */
export function isShadowCopy (flow: FlowContext | undefined): boolean {
  return (flow as { [kCopy]?: boolean } | undefined)?.[kCopy] === true
}
