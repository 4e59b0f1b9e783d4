// Fallback receipts: each hop that serves a request outside the lane it asked for notes where and
// why in the flow's baggage (`flowtag.fallback`), so later hops, the response and the trace say so.
import { trace } from '@opentelemetry/api'
import type { FlowContext } from './flow.ts'

/** The baggage member that carries the receipt downstream. */
export const FALLBACK_BAGGAGE_KEY = 'flowtag.fallback'
/** The response header that carries it back upstream (and, with debug on, to the client). */
export const FALLBACK_HEADER = 'x-flowtag-fallback'
/** At most this many entries (hops), and this many characters, per request. */
export const MAX_FALLBACK_ENTRIES = 8
export const MAX_FALLBACK_LENGTH = 512

export type FallbackReason = 'no-instance' | 'ejected' | 'lease-expired'

const ENTRY = /^([^:|>()\s]{1,128}):([A-Za-z0-9._-]{1,64})>([A-Za-z0-9._-]{1,64})\((no-instance|ejected|lease-expired)\)$/

function entries (value: string | undefined): string[] {
  if (value === undefined || value === '') return []
  return value.split('|').filter((e) => ENTRY.test(e))
}

function add (flow: FlowContext, list: string[], entry: string): boolean {
  const service = entry.slice(0, entry.indexOf(':'))
  // one entry per hop (the service the request fell back on); bounded in count and length
  if (list.some((e) => e.startsWith(`${service}:`))) return false
  if (list.length >= MAX_FALLBACK_ENTRIES) return false
  const next = list.length === 0 ? entry : `${list.join('|')}|${entry}`
  if (next.length > MAX_FALLBACK_LENGTH) return false
  list.push(entry)
  flow.baggage[FALLBACK_BAGGAGE_KEY] = next
  return true
}

/**
 * Note that `service` served this request from lane `to` instead of `from`, and why: an entry
 * `service:from>to(reason)` in the flow's `flowtag.fallback` baggage (at most one per service,
 * 8 entries, 512 characters) and a `flowtag.fallback` event on the active span.
 */
export function recordFallback (flow: FlowContext, service: string, from: string, to: string, reason: FallbackReason): void {
  const entry = `${service}:${from}>${to}(${reason})`
  if (!ENTRY.test(entry)) return
  if (!add(flow, entries(flow.baggage[FALLBACK_BAGGAGE_KEY]), entry)) return
  trace.getActiveSpan()?.addEvent('flowtag.fallback', { 'flowtag.service': service, 'flowtag.lane.requested': from, 'flowtag.lane.served': to, 'flowtag.fallback.reason': reason })
}

/** Merge the receipt an upstream hop returned (its `x-flowtag-fallback` header) into the flow. */
export function mergeFallback (flow: FlowContext, header: string | string[] | undefined): void {
  const text = Array.isArray(header) ? header.join('|') : header
  if (typeof text !== 'string' || text.length > MAX_FALLBACK_LENGTH * 2) return
  const list = entries(flow.baggage[FALLBACK_BAGGAGE_KEY])
  for (const e of entries(text)) add(flow, list, e)
}

/** The flow's receipt (`entry|entry`), or undefined when the request never left its lane. */
export function fallbackOf (flow: FlowContext | undefined): string | undefined {
  const v = flow?.baggage[FALLBACK_BAGGAGE_KEY]
  return v === undefined || v === '' ? undefined : v
}
