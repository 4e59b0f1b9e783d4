// The dispatcher's fallback-receipt hook: note a request served outside its lane (see
// @flowtag/context recordFallback). The receipts upstream hops send back are merged by the
// OutboundHandler (onResponseStart).
import type { FlowContext } from '@flowtag/context'
import { recordFallback, type FallbackReason } from '@flowtag/context/internals'
import type { ServiceTable } from './service-table.ts'

/** Why `requested` could not serve: its instances are all ejected, or it has none available. */
export function fallbackReason (table: ServiceTable, requested: string): FallbackReason {
  const lane = table.lanes.get(requested)
  return lane !== undefined && lane.table === null && lane.ejected > 0 ? 'ejected' : 'no-instance'
}

export function noteFallback (flow: FlowContext, table: ServiceTable, requested: string, served: string, reason?: FallbackReason): void {
  recordFallback(flow, table.service, requested, served, reason ?? fallbackReason(table, requested))
}
