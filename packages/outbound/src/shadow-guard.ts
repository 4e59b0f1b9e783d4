// A shadow flow (a mirrored copy, `x-flow-shadow`) never writes: an outbound request whose method
// is not safe is refused with a coded error, or sent to a configured sink instead. One guard for
// the FlowTagDispatcher and the global fetch router, so every way out of the process through
// flowtag is covered.
import { metrics, type Counter } from '@opentelemetry/api'
import { Dispatcher, Pool } from 'undici'
import { z } from 'zod'
import { isShadowCopy, shadowAllowsMethod, type FlowContext } from '@flowtag/context'
import { errorCodes, OutboundError } from './errors.ts'

export const shadowGuardSchema = z.strictObject({
  /**
   * Methods besides GET, HEAD, OPTIONS and TRACE a shadow may send: only PUT and DELETE can be
   * declared (idempotent), for services whose PUT/DELETE write nothing a shadow must not touch.
   */
  allowMethods: z.array(z.enum(['PUT', 'DELETE'])).max(2).default([]),
  /**
   * An origin (`http://host:port`) that receives a shadow's refused requests instead of an error
   * (a recorder or a stub); the request keeps its path, headers and body, plus
   * `x-flowtag-shadow-origin` naming where it was going.
   */
  sink: z.url({ protocol: /^https?$/ }).refine((u) => new URL(u).pathname === '/' && new URL(u).search === '', { message: 'must be an origin (scheme, host, port; no path)' }).optional()
}).prefault({})

export type ShadowGuardOptions = z.input<typeof shadowGuardSchema>

let refusedCounter: Counter | undefined
let sunkCounter: Counter | undefined

/** Refusals and sink deliveries of shadow writes in this process (all guards). */
export const shadowWriteCounts = { refused: 0, sunk: 0 }

export class ShadowGuard {
  readonly #allowed: ReadonlySet<string>
  readonly #sink: string | undefined
  #pool: Pool | undefined

  constructor (options: z.output<typeof shadowGuardSchema>) {
    this.#allowed = new Set(options.allowMethods)
    this.#sink = options.sink === undefined ? undefined : new URL(options.sink).origin
  }

  /**
   * Inside a shadow flow, handle a request a shadow may not send (refuse it, or send it to the
   * sink) and return true; otherwise false (the caller sends it as usual).
   */
  intercept (flow: FlowContext | undefined, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, service: string): boolean {
    if (flow?.shadow !== true) return false
    const method = opts.method ?? 'GET'
    if (shadowAllowsMethod(method, this.#allowed) || isShadowCopy(flow)) return false
    const origin = typeof opts.origin === 'string' ? opts.origin : String(opts.origin ?? '')
    const attrs = { 'http.request.method': method.toUpperCase(), service }
    if (this.#sink !== undefined) {
      shadowWriteCounts.sunk++
      sunkCounter ??= metrics.getMeter('@flowtag/outbound').createCounter('flowtag.outbound.shadow_sunk', { description: 'Writes of shadow flows sent to the shadow sink instead' })
      sunkCounter.add(1, attrs)
      this.#pool ??= new Pool(this.#sink)
      const headers = withHeader(opts.headers, 'x-flowtag-shadow-origin', origin)
      try {
        this.#pool.dispatch({ ...opts, origin: this.#sink, headers }, handler)
      } catch (err) {
        handler.onResponseError?.(null as never, err as Error)
      }
      return true
    }
    shadowWriteCounts.refused++
    refusedCounter ??= metrics.getMeter('@flowtag/outbound').createCounter('flowtag.outbound.shadow_refused', { description: 'Writes of shadow flows refused' })
    refusedCounter.add(1, attrs)
    handler.onResponseError?.(null as never, new OutboundError(errorCodes.SHADOW_WRITE_REFUSED,
      `a shadow flow may not send ${method.toUpperCase()} (to ${service}): shadows never write`, service, flow.tag))
    return true
  }

  async close (): Promise<void> {
    await this.#pool?.close()
  }
}

/** The request's headers with one more (flat arrays, iterables and objects, as undici takes them). */
function withHeader (headers: Dispatcher.DispatchOptions['headers'], name: string, value: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const add = (k: string, v: unknown) => { if (v !== undefined && v !== null) out[k.toLowerCase()] = Array.isArray(v) ? v.map(String) : String(v) }
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) add(String(headers[i]), headers[i + 1])
  } else if (headers != null && typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, unknown]>) add(k, v)
  } else if (headers != null) {
    for (const [k, v] of Object.entries(headers)) add(k, v)
  }
  out[name] = value
  return out
}
