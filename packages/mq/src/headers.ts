// Message headers as the lane's carrier. Kafka headers are strings or Buffers (possibly repeated),
// AMQP headers any field-table value; both become the plain string carrier @flowtag/context reads
// and writes, so a message hop carries the lane exactly as an HTTP hop does.
import { metrics, type Counter } from '@opentelemetry/api'
import { currentFlow, writeFlowHeaders, FLOW_TAG_HEADER, SHADOW_HEADER, type Carrier, type FlowContext } from '@flowtag/context'

/** A message's headers as clients hand them over: Kafka (`Buffer | string | array`) or AMQP (any). */
export type MessageHeaders = Record<string, unknown>

/** Signs the lane written in `x-flow-tag` (e.g. `(lane) => signTag(lane, ttl, key)` of @flowtag/context). */
export type SignLane = (lane: string) => string

function text (v: unknown): string | undefined {
  if (typeof v === 'string') return v
  if (Buffer.isBuffer(v)) return v.toString('utf8')
  return undefined
}

/**
 * The string carrier of a message's headers (names lower-cased). A repeated header stays an array,
 * which @flowtag/context treats as absent; values that are neither strings nor Buffers are left out.
 */
export function carrierOf (headers: MessageHeaders | undefined): Carrier {
  const carrier: Carrier = {}
  if (headers === undefined || headers === null) return carrier
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase()
    if (Array.isArray(value)) {
      const all = value.map(text).filter((s): s is string => s !== undefined)
      if (all.length > 0) carrier[key] = all.length === 1 ? all[0] : all
    } else {
      const s = text(value)
      if (s !== undefined) carrier[key] = s
    }
  }
  return carrier
}

/**
 * The carrier of just the lane headers (`x-flow-tag`, `baggage`): all a consumer reads, per
 * message, so the other headers are neither copied nor decoded.
 */
export function laneCarrierOf (headers: MessageHeaders | undefined): Carrier {
  const carrier: Carrier = {}
  if (headers === undefined || headers === null) return carrier
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue
    const key = name.length === FLOW_TAG_HEADER.length || name.length === 7 || name.length === SHADOW_HEADER.length ? name.toLowerCase() : ''
    if (key !== FLOW_TAG_HEADER && key !== 'baggage' && key !== SHADOW_HEADER) continue
    const value = headers[name]
    if (Array.isArray(value)) {
      const all = value.map(text).filter((s): s is string => s !== undefined)
      if (all.length > 0) carrier[key] = all.length === 1 ? all[0] : all
    } else {
      const s = text(value)
      if (s !== undefined) carrier[key] = s
    }
  }
  return carrier
}

/**
 * The lane headers of a message produced inside `flow`: `x-flow-tag` (signed when `sign` is
 * given) and `baggage` (the `flowtag.lane` member plus the flow's baggage, merged into the
 * message's own `baggage`). Empty outside a flow. Never throws: a signer that throws leaves the
 * plain lane in `x-flow-tag`.
 */
export function laneHeaders (existing: MessageHeaders | undefined, flow: FlowContext | undefined = currentFlow(), sign?: SignLane): Record<string, string> {
  if (flow === undefined) return {}
  const carrier: Carrier = {}
  const bag = existing === undefined ? undefined : text(existing.baggage)
  if (bag !== undefined) carrier.baggage = bag
  writeFlowHeaders(carrier, flow)
  const out: Record<string, string> = {}
  const tag = carrier[FLOW_TAG_HEADER]
  if (typeof tag === 'string') {
    out[FLOW_TAG_HEADER] = tag
    if (sign !== undefined) {
      try {
        out[FLOW_TAG_HEADER] = sign(tag)
      } catch {
        // keep the plain lane: a consumer that needs signatures counts it as refused
      }
    }
  }
  if (typeof carrier.baggage === 'string') out.baggage = carrier.baggage
  if (carrier[SHADOW_HEADER] === '1') out[SHADOW_HEADER] = '1'
  return out
}

let suppressedCounter: Counter | undefined
let suppressed = 0

/**
 * A shadow flow (a mirrored copy) never produces: the lane producers call this first and, when it
 * says so, resolve without sending. Counts the messages left unsent as `flowtag.mq.shadow_suppressed`
 * (attribute `messaging.system`) and in {@link shadowSuppressedCount}.
 */
export function suppressedInShadow (flow: FlowContext | undefined, system: 'kafka' | 'rabbitmq', messages: number): boolean {
  if (flow?.shadow !== true) return false
  suppressed += messages
  suppressedCounter ??= metrics.getMeter('@flowtag/mq').createCounter('flowtag.mq.shadow_suppressed', {
    description: 'Messages a shadow flow (a mirrored copy) did not produce'
  })
  suppressedCounter.add(messages, { 'messaging.system': system })
  return true
}

/** Messages left unsent by shadow flows in this process since it started. */
export function shadowSuppressedCount (): number {
  return suppressed
}

/** Copy `headers` with the lane headers of `flow` set over it (other headers kept; nothing added outside a flow). */
export function withLaneHeaders<H extends MessageHeaders> (headers: H | undefined, flow: FlowContext | undefined = currentFlow(), sign?: SignLane): H | undefined {
  return setLane(headers, laneHeaders(headers, flow, sign))
}

/**
 * `withLaneHeaders` for the messages of one send, all produced in `flow`: the lane headers are
 * built (and signed) once; a message that brings its own `baggage` gets its own, merged.
 */
export function laneStamper (flow: FlowContext, sign?: SignLane): <H extends MessageHeaders>(headers: H | undefined) => H | undefined {
  let plain: Record<string, string> | undefined
  return (headers) => {
    if (headers?.baggage !== undefined) return withLaneHeaders(headers, flow, sign)
    plain ??= laneHeaders(undefined, flow, sign)
    return setLane(headers, plain)
  }
}

function setLane<H extends MessageHeaders> (headers: H | undefined, lane: Record<string, string>): H | undefined {
  if (Object.keys(lane).length === 0) return headers
  const out: MessageHeaders = {}
  if (headers !== undefined && headers !== null) {
    for (const [k, v] of Object.entries(headers)) {
      const lower = k.toLowerCase()
      if (lower !== FLOW_TAG_HEADER && lower !== 'baggage' && lower !== SHADOW_HEADER) out[k] = v
    }
  }
  return Object.assign(out, lane) as H
}
