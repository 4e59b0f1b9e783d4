// The dispatcher's fallback-receipt hooks: note a request served outside its lane (see
// @flowtag/context recordFallback) and merge the receipts upstream hops send back.
import { FALLBACK_HEADER, mergeFallback, recordFallback, type FallbackReason, type FlowContext } from '@flowtag/context'
import type { Dispatcher } from 'undici'
import type { ServiceTable } from './service-table.ts'

type Handler = Dispatcher.DispatchHandler

/** Why `requested` could not serve: its instances are all ejected, or it has none available. */
export function fallbackReason (table: ServiceTable, requested: string): FallbackReason {
  const lane = table.lanes.get(requested)
  return lane !== undefined && lane.table === null && lane.ejected > 0 ? 'ejected' : 'no-instance'
}

export function noteFallback (flow: FlowContext, table: ServiceTable, requested: string, served: string, reason?: FallbackReason): void {
  recordFallback(flow, table.service, requested, served, reason ?? fallbackReason(table, requested))
}

/**
 * The caller's handler, reading the upstream's `x-flowtag-fallback` response header into the
 * flow first, so a receipt written two hops down reaches the edge. Every other callback is
 * passed through as it is.
 */
class ReceiptHandler implements Handler {
  readonly #inner: Handler
  readonly #flow: FlowContext

  constructor (inner: Handler, flow: FlowContext) {
    this.#inner = inner
    this.#flow = flow
  }

  onRequestStart (controller: Dispatcher.DispatchController, context: unknown): void {
    this.#inner.onRequestStart?.(controller, context)
  }

  onRequestUpgrade (controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>, socket: Parameters<NonNullable<Handler['onRequestUpgrade']>>[3]): void {
    this.#inner.onRequestUpgrade?.(controller, status, headers, socket)
  }

  onResponseStart (controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>, message: string): void {
    const h = headers[FALLBACK_HEADER]
    if (h !== undefined) mergeFallback(this.#flow, h)
    this.#inner.onResponseStart?.(controller, status, headers, message)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#inner.onResponseData?.(controller, chunk)
  }

  onResponseEnd (controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.#inner.onResponseEnd?.(controller, trailers)
  }

  onResponseError (controller: Dispatcher.DispatchController, error: Error): void {
    this.#inner.onResponseError?.(controller, error)
  }
}

export function withReceipts (handler: Handler, flow: FlowContext): Handler {
  return handler.onResponseStart === undefined ? handler : new ReceiptHandler(handler, flow)
}
