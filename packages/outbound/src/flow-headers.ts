// The headers of an outbound request: the caller's, with the flow written in by
// @flowtag/context's writeFlowHeaders() (x-flow-tag and baggage), and Host set to the service name.
import { BAGGAGE_KEY, FLOW_TAG_HEADER, laneBaggageMember, writeFlowHeaders, parseBaggage, parseTag, type Carrier, type FlowContext } from '@flowtag/context'
import type { Dispatcher } from 'undici'

type Headers = Dispatcher.DispatchOptions['headers']

/**
 * New headers for the instance request; the caller's object is never mutated. With a flow, the
 * lane comes from the flow only: a copied x-flow-tag is dropped (writeFlowHeaders() writes the flow's),
 * and a flow without a tag also drops an inherited `flowtag.lane` baggage member, so a naively
 * forwarded incoming header cannot move a request to another lane. Other baggage members stay.
 */
export function outboundHeaders (headers: Headers, flow: FlowContext | undefined, host: string, signTag?: (lane: string) => string): Carrier {
  const out: Carrier = {}
  let hasHost = false
  if (headers != null) {
    if (Array.isArray(headers)) {
      // Flat [name, value, name, value, ...].
      for (let i = 0; i + 1 < headers.length; i += 2) hasHost = copy(out, headers[i] as string, headers[i + 1] as string, flow) || hasHost
    } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) hasHost = copy(out, name, value, flow) || hasHost
    } else {
      const obj = headers as Carrier
      for (const name in obj) hasHost = copy(out, name, obj[name], flow) || hasHost
    }
  }
  if (!hasHost) out.host = host
  if (flow !== undefined) {
    // The common case (a valid tag, no baggage from the caller or of the flow's own) writes
    // exactly what writeFlowHeaders() would, without its per-request arrays, Set and string joins.
    const tag = flow.tag
    const member = out.baggage === undefined && isEmpty(flow.baggage) ? laneBaggageMember(tag) : undefined
    if (member !== undefined) {
      out[FLOW_TAG_HEADER] = tag
      out.baggage = member
    } else {
      if (out.baggage !== undefined && parseTag(tag) === undefined) dropLane(out)
      writeFlowHeaders(out, flow)
    }
    // The lane in x-flow-tag travels signed; inject() only wrote it for a valid tag.
    if (signTag !== undefined && typeof tag === 'string' && out[FLOW_TAG_HEADER] === tag) out[FLOW_TAG_HEADER] = signTag(tag)
  }
  return out
}

function isEmpty (obj: object | undefined): boolean {
  for (const _ in obj) return false
  return true
}

/** Copies one header, returns true when it is Host. */
function copy (out: Carrier, name: string, value: string | string[] | undefined, flow: FlowContext | undefined): boolean {
  if (value === undefined) return false
  const len = name.length
  // Only names of these exact lengths need the (allocating) lower-casing.
  if (len === 4 || len === 7 || len === 10) {
    const lower = name.toLowerCase()
    if (lower === 'host') {
      out[name] = value
      return true
    }
    if (flow !== undefined) {
      if (lower === 'x-flow-tag') return false
      // One lower-case baggage header, so the lane member can be found and replaced.
      if (lower === 'baggage') name = lower
    }
  }
  const prev = out[name]
  out[name] = prev === undefined ? value : ([] as string[]).concat(prev, value)
  return false
}

function dropLane (out: Carrier): void {
  const kept = parseBaggage(out.baggage)
    .filter((e) => e.key !== BAGGAGE_KEY)
    .map((e) => e.raw)
  if (kept.length === 0) delete out.baggage
  else out.baggage = kept.join(',')
}
