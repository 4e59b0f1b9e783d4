// The flow in a call's metadata: `x-flow-tag` and `baggage` (the tag signed when `sign` is set),
// written by the channel of `clientOptions()` (flow-channel.ts) and by the interceptor for
// clients of fixed addresses.
import { InterceptingCall, type Interceptor, type Metadata } from '@grpc/grpc-js'
import { currentFlow, FLOW_TAG_HEADER, laneBaggageMember, parseTag, SHADOW_HEADER, writeFlowHeaders, laneSigner, type Carrier, type FlowContext } from '@flowtag/context'
import type { ResolvedGrpcOptions } from './options.ts'
import { shadowRefusal } from './shadow-guard.ts'

/** Write the flow into `md`. A tag already in the metadata is replaced: the flow decides the lane. */
export function writeFlow (md: Metadata, flow: FlowContext | undefined, signed?: (lane: string) => string): void {
  if (flow === undefined) return
  const existing = md.get('baggage')
  // The common case: a valid tag, no baggage of the flow's own or from the caller.
  const member = existing.length === 0 && flow.shadow !== true && isEmpty(flow.baggage) ? laneBaggageMember(flow.tag) : undefined
  if (member !== undefined) {
    const tag = flow.tag!
    md.set(FLOW_TAG_HEADER, signed === undefined ? tag : signed(tag))
    md.set('baggage', member)
    if (md.get(SHADOW_HEADER).length > 0) md.remove(SHADOW_HEADER)
    return
  }
  const tag = parseTag(flow.tag)
  const carrier: Carrier = {}
  if (existing.length > 0) carrier.baggage = existing.map(String).join(',')
  writeFlowHeaders(carrier, flow)
  md.remove(FLOW_TAG_HEADER)
  if (tag !== undefined) md.set(FLOW_TAG_HEADER, signed === undefined ? tag : signed(tag))
  if (typeof carrier.baggage === 'string') md.set('baggage', carrier.baggage)
  else md.remove('baggage')
  // the shadow marker travels like the tag; the flow, not copied metadata, says whether it is one
  if (flow.shadow === true) md.set(SHADOW_HEADER, '1')
  else md.remove(SHADOW_HEADER)
}

function isEmpty (obj: object): boolean {
  for (const _ in obj) return false
  return true
}

/** The signer of `signing` (or of the deprecated `sign`): a token per lane, reused until half its lifetime is gone. */
export function signer (o: ResolvedGrpcOptions): ((lane: string) => string) | undefined {
  if (o.signing !== undefined) return laneSigner(o.signing)
  if (o.sign !== undefined) return laneSigner({ keys: [o.sign.key], ttlSeconds: o.sign.ttlSeconds })
  return undefined
}

/**
 * The flow interceptor, for clients of fixed addresses: it writes the caller's flow into every
 * call's metadata, and refuses a shadow flow's call to a method not in `safeMethods`. (Clients made with `clientOptions()` do this below the interceptors, in their
 * channel, and retry there too: a fixed address has no other instance to retry on.)
 */
export function flowInterceptor (o: ResolvedGrpcOptions): Interceptor {
  const signed = signer(o)
  const safe = new Set(o.safeMethods.map((m) => m.path))
  return function flowtagInterceptor (options, nextCall) {
    // Captured now: the caller's async context is the call's flow.
    const flow = currentFlow()
    const refusal = shadowRefusal(flow, options.method_definition.path, safe)
    if (refusal !== undefined) {
      // a shadow's call that may write: never started, it ends with the refusal
      return new InterceptingCall(nextCall(options), {
        start (_md, listener) { process.nextTick(() => listener.onReceiveStatus?.(refusal)) },
        sendMessage () {},
        halfClose () {},
        cancel () {}
      })
    }
    return new InterceptingCall(nextCall(options), {
      start (md, listener, next) {
        writeFlow(md, flow, signed)
        next(md, listener)
      }
    })
  }
}
