import { context, createContextKey, metrics, propagation, ROOT_CONTEXT, trace, type Attributes, type Context, type Counter } from '@opentelemetry/api'
import type { Decision } from '@flowtag/rules'
import { BAGGAGE_KEY } from './codec.ts'

/** Span attribute set on the active span when a request gets a lane. */
export const LANE_ATTRIBUTE = 'flowtag.lane'
/** Span attribute naming the rule that matched (set only when a rule decided the lane, not the default). */
export const RULE_ATTRIBUTE = 'flowtag.rule'
/** Span attribute with the version of the RuleSet that decided the lane (set only when the rules decided it). */
export const RULE_VERSION_ATTRIBUTE = 'flowtag.rule_version'

const probeKey = createContextKey('flowtag.context.probe')
const probe = ROOT_CONTEXT.setValue(probeKey, true)
let managerSeen = false
let sinceProbe = 0

/**
 * True once a real context manager is registered (an OTel SDK). The API's no-op manager
 * ignores the context given to with(), so without one there is no active span to mark and
 * nothing would carry the baggage: skip building it. Until one is seen, probed on the first
 * call and then every 256th (an SDK may be registered after this module loads); once seen,
 * remembered.
 */
export function otelContextManagerActive (): boolean {
  if (managerSeen) return true
  if ((sinceProbe++ & 255) === 0) managerSeen = context.with(probe, readProbe)
  return managerSeen
}

function readProbe (): boolean {
  return context.active().getValue(probeKey) === true
}

/**
 * Mark the active span with the lane (and, when the rules decided it, the matched rule's name
 * and the RuleSet's version) and return the active OTel context with the lane in its baggage,
 * so OTel's own propagators carry it on. A span that is not recording is left alone (nothing
 * is built for it); with no OTel SDK registered this is a few no-op calls.
 */
export function otelContextFor (tag: string, rule?: string, ruleVersion?: number): Context {
  const active = context.active()
  const span = trace.getSpan(active)
  if (span?.isRecording() === true) {
    span.setAttribute(LANE_ATTRIBUTE, tag)
    if (rule !== undefined) span.setAttribute(RULE_ATTRIBUTE, rule)
    if (ruleVersion !== undefined) span.setAttribute(RULE_VERSION_ATTRIBUTE, ruleVersion)
  }
  const bag = propagation.getBaggage(active) ?? propagation.createBaggage()
  return propagation.setBaggage(active, bag.setEntry(BAGGAGE_KEY, { value: tag }))
}

/** Run `fn` inside an OTel context (a no-op wrapper when no context manager is registered). */
export function withOtelContext<T> (ctx: Context, fn: () => T): T {
  return context.with(ctx, fn)
}

let dropped: Counter | undefined

/** Count a dropped or ignored incoming tag through the OTel metrics API. */
export function countTag (outcome: string, source: string): void {
  // created lazily so a MeterProvider registered after this module loaded is used
  dropped ??= metrics.getMeter('@flowtag/context').createCounter('flowtag.context.incoming_tags_refused', {
    description: 'Incoming flow tags dropped (malformed, bad signature) or ignored (untrusted)'
  })
  dropped.add(1, { outcome, source })
}

let shadowCounter: Counter | undefined
// Decisions are shared frozen objects of a compiled set, so a (live, shadow) pair maps to one
// attributes object: nothing is built per request. Cleared when it grows (new rule sets).
const shadowAttrs = new Map<Decision, Map<Decision, Attributes>>()
let shadowPairs = 0

/**
 * Count one request's (live lane -> shadow lane) pair: `flowtag.context.shadow_decisions`,
 * attributes live_lane, shadow_lane, shadow_rule (`(default)` when no rule decided),
 * live_version, shadow_version.
 */
export function countShadow (live: Decision, shadow: Decision, liveVersion: number, shadowVersion: number): void {
  shadowCounter ??= metrics.getMeter('@flowtag/context').createCounter('flowtag.context.shadow_decisions', {
    description: 'Requests by the lane the live rules gave them and the lane the shadow rules would have'
  })
  let byLive = shadowAttrs.get(shadow)
  if (byLive === undefined) {
    if (shadowPairs > 4096) { shadowAttrs.clear(); shadowPairs = 0 }
    shadowAttrs.set(shadow, byLive = new Map())
  }
  let attrs = byLive.get(live)
  if (attrs === undefined) {
    attrs = { live_lane: live.tag, shadow_lane: shadow.tag, shadow_rule: shadow.rule ?? '(default)', live_version: String(liveVersion), shadow_version: String(shadowVersion) }
    byLive.set(live, attrs)
    shadowPairs++
  }
  shadowCounter.add(1, attrs)
}
