// The dispatcher's tag-loss hook: @flowtag/context decides whether a call lost its flow; this
// only reads the tag the caller put in its own headers (a forwarded or hand-set x-flow-tag).
import { checkOutboundFlow, FLOW_TAG_HEADER, type FlowContext } from '@flowtag/context'
import type { Dispatcher } from 'undici'

function carriedTag (headers: Dispatcher.DispatchOptions['headers']): string | undefined {
  if (headers == null) return undefined
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === FLOW_TAG_HEADER) return String(headers[i + 1])
    return undefined
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [name, value] of headers as Iterable<[string, string]>) if (name.toLowerCase() === FLOW_TAG_HEADER) return String(value)
    return undefined
  }
  const v = (headers as Record<string, unknown>)[FLOW_TAG_HEADER]
  return typeof v === 'string' ? v : undefined
}

/** undefined when the call may go; in strict mode, the error to fail it with at the call site. */
export function tagLossCheck (flow: FlowContext | undefined, headers: Dispatcher.DispatchOptions['headers']): Error | undefined {
  return checkOutboundFlow(flow, flow === undefined ? undefined : carriedTag(headers))
}
