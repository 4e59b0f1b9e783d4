// The headers of an outbound request: the caller's without hop-by-hop fields (hop-by-hop.ts),
// with the flow written in by @flowtag/context's writeFlowHeaders() (x-flow-tag, baggage and the
// shadow marker), and
// Host set to the service name.
import { BAGGAGE_KEY, FLOW_TAG_HEADER, laneBaggageMember, writeFlowHeaders, parseTag, type Carrier, type FlowContext } from '@flowtag/context'
import { parseBaggage } from '@flowtag/context/internals'
import type { Dispatcher } from 'undici'
import { CONNECTION, dropNamed, KEEP, requestHop, tokens, TRAILERS } from './hop-by-hop.ts'

type Headers = Dispatcher.DispatchOptions['headers']

/** copy()'s answer: the header was Host, or a Connection header (not copied; its names are dropped). */
const HOST = -1
const NAMES = -2

/**
 * New headers for the instance request; the caller's object is never mutated. Hop-by-hop fields
 * (Connection and the fields it names, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade,
 * TE but `trailers`, `Expect: 100-continue`) are not copied: they concern the caller's own
 * connection, and undici refuses most of them. With a flow, the
 * lane comes from the flow only: a copied x-flow-tag is dropped (writeFlowHeaders() writes the flow's),
 * and a flow without a tag also drops an inherited `flowtag.lane` baggage member, so a naively
 * forwarded incoming header cannot move a request to another lane. Other baggage members stay.
 */
export function outboundHeaders (headers: Headers, flow: FlowContext | undefined, host: string, signTag?: (lane: string) => string): Carrier {
  const out: Carrier = {}
  let hasHost = false
  let named: string[] | undefined
  if (headers != null) {
    let kind: number
    if (Array.isArray(headers)) {
      // Flat [name, value, name, value, ...].
      for (let i = 0; i + 1 < headers.length; i += 2) {
        if ((kind = copy(out, headers[i] as string, headers[i + 1] as string, flow)) === HOST) hasHost = true
        else if (kind === NAMES) named = tokens(headers[i + 1] as string).concat(named ?? [])
      }
    } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [name, value] of headers as Iterable<[string, string | string[] | undefined]>) {
        if ((kind = copy(out, name, value, flow)) === HOST) hasHost = true
        else if (kind === NAMES) named = tokens(value).concat(named ?? [])
      }
    } else {
      const obj = headers as Carrier
      for (const name in obj) {
        if ((kind = copy(out, name, obj[name], flow)) === HOST) hasHost = true
        else if (kind === NAMES) named = tokens(obj[name]).concat(named ?? [])
      }
    }
  }
  if (named !== undefined && dropNamed(out, named)) hasHost = false
  if (!hasHost) out.host = host
  if (flow !== undefined) {
    // The common case (a valid tag, no baggage from the caller or of the flow's own) writes
    // exactly what writeFlowHeaders() would, without its per-request arrays, Set and string joins.
    const tag = flow.tag
    const member = out.baggage === undefined && flow.shadow !== true && isEmpty(flow.baggage) ? laneBaggageMember(tag) : undefined
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

/** Copies one header; answers HOST, NAMES (a Connection header, not copied) or something else. */
function copy (out: Carrier, name: string, value: string | string[] | undefined, flow: FlowContext | undefined): number {
  if (value === undefined) return KEEP
  const len = name.length
  // Only names of these exact lengths need the (allocating) lower-casing: host (4), te (2),
  // expect (6), upgrade and baggage (7), connection, keep-alive and x-flow-tag (10),
  // x-flow-shadow (13), proxy-connection (16), transfer-encoding (17).
  if (len === 4 || len === 7 || len === 10 || len === 2 || len === 6 || len === 13 || len === 16 || len === 17) {
    const lower = name.toLowerCase()
    if (lower === 'host') {
      out[name] = value
      return HOST
    }
    const hop = requestHop(lower, value)
    if (hop === CONNECTION) return NAMES
    if (hop === TRAILERS) {
      out[name] = 'trailers'
      return hop
    }
    if (hop !== KEEP) return hop
    if (flow !== undefined) {
      // the flow, not a copied header, says the lane and whether the call is a shadow
      if (lower === 'x-flow-tag' || lower === 'x-flow-shadow') return KEEP
      // One lower-case baggage header, so the lane member can be found and replaced.
      if (lower === 'baggage') name = lower
    }
  }
  const prev = out[name]
  out[name] = prev === undefined ? value : ([] as string[]).concat(prev, value)
  return KEEP
}

function dropLane (out: Carrier): void {
  const kept = parseBaggage(out.baggage)
    .filter((e) => e.key !== BAGGAGE_KEY)
    .map((e) => e.raw)
  if (kept.length === 0) delete out.baggage
  else out.baggage = kept.join(',')
}
