import { BAGGAGE_KEY, FLOW_TAG_HEADER, parseTag, SHADOW_BAGGAGE_KEY, SHADOW_HEADER } from './codec.ts'
import { encodeBaggageValue, isBaggageKey, MAX_BAGGAGE_LENGTH, parseBaggage } from './baggage.ts'
import { currentFlow, type FlowContext } from './flow.ts'

/** A plain header object: what Node, Fastify, Express and undici dispatch options use. */
export type Carrier = Record<string, string | string[] | undefined>

function headerValue (carrier: Carrier, name: string): string | string[] | undefined {
  const v = carrier[name]
  if (v !== undefined) return v
  // carriers built by hand may use other casing; Node's own are always lower case
  for (const k of Object.keys(carrier)) if (k.length === name.length && k.toLowerCase() === name) return carrier[k]
  return undefined
}

function deleteHeader (carrier: Carrier, name: string): void {
  for (const k of Object.keys(carrier)) if (k.toLowerCase() === name) delete carrier[k]
}

const MAX_CACHED_TAGS = 256
/** `flowtag.lane=<tag>` per valid tag: tags are few (the lanes), so none is rebuilt per call. */
const laneMembers = new Map<string, string>()

/**
 * The `baggage` member that carries a lane: `flowtag.lane=<tag>`, or undefined for an invalid
 * tag. Cached per tag (at most 256), so hot paths that write a lane per call build no string.
 */
export function laneBaggageMember (tag: unknown): string | undefined {
  if (typeof tag !== 'string') return undefined
  let member = laneMembers.get(tag)
  if (member === undefined) {
    if (parseTag(tag) === undefined) return undefined
    if (laneMembers.size >= MAX_CACHED_TAGS) laneMembers.clear()
    laneMembers.set(tag, (member = `${BAGGAGE_KEY}=${tag}`))
  }
  return member
}

const SHADOW_MEMBER = `${SHADOW_BAGGAGE_KEY}=1`

/**
 * Write the flow into outgoing headers: `x-flow-tag: <lane>` and, in `baggage`, the
 * `flowtag.lane` entry plus the flow's own baggage entries; a shadow flow also gets
 * `x-flow-shadow: 1` and `flowtag.shadow=1` (a marker already in the carrier is removed when
 * the flow is not a shadow: the flow, not the copied headers, says what the call is). Members already in the
 * carrier's baggage header are kept (those with the same keys are replaced); over the W3C
 * limit of 8192 bytes, inherited members are dropped first. Mutates `carrier`; never throws (an
 * invalid tag or baggage key is left out). The OTel form is {@link FlowTagPropagator}.
 *
 * @param carrier a plain header object (Node, Fastify, Express, undici dispatch options)
 * @param flow the flow to write. @default currentFlow() (nothing is written outside a flow)
 */
export function writeFlowHeaders (carrier: Carrier, flow: FlowContext | undefined = currentFlow()): void {
  if (flow === undefined) return
  const tag = parseTag(flow.tag)
  const ours: string[] = []
  const keys = new Set<string>([SHADOW_BAGGAGE_KEY])
  if (tag !== undefined) {
    deleteHeader(carrier, FLOW_TAG_HEADER)
    carrier[FLOW_TAG_HEADER] = tag
    ours.push(`${BAGGAGE_KEY}=${tag}`)
    keys.add(BAGGAGE_KEY)
  }
  if (flow.shadow === true) {
    deleteHeader(carrier, SHADOW_HEADER)
    carrier[SHADOW_HEADER] = '1'
    ours.push(SHADOW_MEMBER)
  } else if (headerValue(carrier, SHADOW_HEADER) !== undefined) {
    deleteHeader(carrier, SHADOW_HEADER)
  }
  for (const key of Object.keys(flow.baggage)) {
    const value = flow.baggage[key]
    if (keys.has(key) || !isBaggageKey(key) || typeof value !== 'string') continue
    ours.push(`${key}=${encodeBaggageValue(value)}`)
    keys.add(key)
  }
  const existing = parseBaggage(headerValue(carrier, 'baggage'))
  if (ours.length === 0 && !existing.some((e) => e.key === SHADOW_BAGGAGE_KEY)) return
  const members: string[] = []
  for (const e of existing) if (!keys.has(e.key)) members.push(e.raw)
  let header = members.concat(ours).join(',')
  // over the W3C limit: drop inherited members first, ours last
  while (header.length > MAX_BAGGAGE_LENGTH && members.length > 0) {
    members.shift()
    header = members.concat(ours).join(',')
  }
  if (header.length > MAX_BAGGAGE_LENGTH) header = tag === undefined ? '' : `${BAGGAGE_KEY}=${tag}`
  deleteHeader(carrier, 'baggage')
  if (header.length > 0) carrier.baggage = header
}

/** What a carrier says about the lane, before any trust decision. */
export interface IncomingTag {
  /** The valid tag, from x-flow-tag or else the baggage entry. */
  tag: string | undefined
  /** A tag was present but did not match the grammar (it is dropped, never echoed). */
  invalid: boolean
  /** Other baggage entries (not the lane, not the shadow marker). */
  baggage: Record<string, string>
  /** The carrier marks a shadow flow (`x-flow-shadow: 1` or baggage `flowtag.shadow=1`). */
  shadow: boolean
}

/** Whether the carrier marks a shadow flow: `x-flow-shadow: 1`, or `flowtag.shadow=1` in baggage. */
export function readShadowMarker (carrier: Carrier): boolean {
  if (headerValue(carrier, SHADOW_HEADER) === '1') return true
  const bag = headerValue(carrier, 'baggage')
  if (bag === undefined || !String(bag).includes(SHADOW_BAGGAGE_KEY)) return false
  for (const e of parseBaggage(bag)) if (e.key === SHADOW_BAGGAGE_KEY && e.value === '1') return true
  return false
}

/** What the carrier says about the lane (valid tag, whether an invalid one was seen, other baggage). */
export function readIncoming (carrier: Carrier): IncomingTag {
  const header = headerValue(carrier, FLOW_TAG_HEADER)
  let tag = parseTag(header)
  let invalid = header !== undefined && tag === undefined
  let shadow = headerValue(carrier, SHADOW_HEADER) === '1'
  const baggage: Record<string, string> = {}
  const bag = headerValue(carrier, 'baggage')
  if (bag !== undefined) {
    for (const e of parseBaggage(bag)) {
      if (e.key === BAGGAGE_KEY) {
        const fromBaggage = parseTag(e.value)
        if (fromBaggage === undefined) invalid = true
        else if (tag === undefined) tag = fromBaggage
      } else if (e.key === SHADOW_BAGGAGE_KEY) {
        if (e.value === '1') shadow = true
      } else if (!Object.hasOwn(baggage, e.key)) {
        baggage[e.key] = e.value
      }
    }
  }
  return { tag, invalid, baggage, shadow }
}

/**
 * Read a flow from incoming headers: `x-flow-tag`, else the `flowtag.lane` baggage entry, plus
 * the other baggage entries, and `shadow: true` when the carrier marks a shadow. Undefined when
 * neither a valid tag nor a shadow marker is present (a repeated header counts as absent).
 * Applies no trust policy, which is the plugins' job; never throws.
 *
 * @param carrier a plain header object; names are matched case-insensitively
 */
export function readFlowHeaders (carrier: Carrier): FlowContext | undefined {
  const incoming = readIncoming(carrier)
  if (incoming.tag === undefined) return incoming.shadow ? { shadow: true, baggage: incoming.baggage } : undefined
  const flow: FlowContext = { tag: incoming.tag, decision: { tag: incoming.tag, reason: 'incoming tag' }, baggage: incoming.baggage }
  if (incoming.shadow) flow.shadow = true
  return flow
}
