// An OpenTelemetry TextMapPropagator for the flow: register it (or put it in a composite) and
// OTel's own instrumentations carry x-flow-tag and the lane's baggage entry on every hop.
import { createContextKey, type Context, type TextMapGetter, type TextMapPropagator, type TextMapSetter } from '@opentelemetry/api'
import { FLOW_TAG_HEADER, SHADOW_HEADER } from './codec.ts'
import { currentFlow, type FlowContext } from './flow.ts'
import { readFlowHeaders, writeFlowHeaders, type Carrier } from './propagation.ts'

const FLOW_KEY = createContextKey('flowtag.flow')

/** The flow stored in an OTel context by {@link contextWithFlow} or {@link FlowTagPropagator.extract}. */
export function flowFromContext (ctx: Context): FlowContext | undefined {
  return ctx.getValue(FLOW_KEY) as FlowContext | undefined
}

/** A copy of `ctx` carrying `flow` (OTel contexts are immutable). */
export function contextWithFlow (ctx: Context, flow: FlowContext): Context {
  return ctx.setValue(FLOW_KEY, flow)
}

/**
 * The flow as an OpenTelemetry `TextMapPropagator`: `x-flow-tag: <lane>` plus the
 * `flowtag.lane=<lane>` entry (and the flow's own entries) in W3C `baggage`; a shadow flow also
 * `x-flow-shadow: 1` and `flowtag.shadow=1`.
 *
 * - `inject` writes the flow of the given context ({@link contextWithFlow}), or else the flow
 *   the caller runs in (`currentFlow()`), through the setter. Entries already in the carrier's
 *   `baggage` are kept when the carrier is a plain header object, so place this propagator
 *   *after* OTel's `W3CBaggagePropagator` in a `CompositePropagator`.
 * - `extract` reads the carrier through the getter and returns the context with the flow in it
 *   (read it back with {@link flowFromContext}); a carrier without a valid tag returns `ctx`
 *   unchanged. No trust policy is applied here: an edge must not honour an incoming tag from
 *   the internet, which is what the Fastify and Express adapters' trust options decide.
 *
 * Neither method throws: an invalid tag or baggage key is left out, as the W3C spec asks.
 *
 * @example
 * import { propagation } from '@opentelemetry/api'
 * import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'
 * propagation.setGlobalPropagator(new CompositePropagator({
 *   propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator(), new FlowTagPropagator()]
 * }))
 */
export class FlowTagPropagator implements TextMapPropagator<unknown> {
  inject (ctx: Context, carrier: unknown, setter: TextMapSetter<unknown>): void {
    const flow = flowFromContext(ctx) ?? currentFlow()
    if (flow === undefined) return
    const out: Carrier = {}
    // Merge with what an earlier propagator wrote, when we can read it (plain header objects).
    const existing = plainHeader(carrier, 'baggage')
    if (existing !== undefined) out.baggage = existing
    writeFlowHeaders(out, flow)
    const tag = out[FLOW_TAG_HEADER]
    if (typeof tag === 'string') setter.set(carrier, FLOW_TAG_HEADER, tag)
    if (flow.shadow === true) setter.set(carrier, SHADOW_HEADER, '1')
    if (typeof out.baggage === 'string' && out.baggage !== existing) setter.set(carrier, 'baggage', out.baggage)
  }

  extract (ctx: Context, carrier: unknown, getter: TextMapGetter<unknown>): Context {
    const incoming: Carrier = {
      [FLOW_TAG_HEADER]: getter.get(carrier, FLOW_TAG_HEADER),
      [SHADOW_HEADER]: getter.get(carrier, SHADOW_HEADER),
      baggage: getter.get(carrier, 'baggage')
    }
    const flow = readFlowHeaders(incoming)
    return flow === undefined ? ctx : contextWithFlow(ctx, flow)
  }

  /** The headers this propagator writes: `['x-flow-tag', 'x-flow-shadow', 'baggage']`. */
  fields (): string[] {
    return [FLOW_TAG_HEADER, SHADOW_HEADER, 'baggage']
  }
}

function plainHeader (carrier: unknown, name: string): string | undefined {
  if (typeof carrier !== 'object' || carrier === null) return undefined
  const v = (carrier as Record<string, unknown>)[name]
  if (typeof v === 'string') return v
  return Array.isArray(v) ? v.join(',') : undefined
}
