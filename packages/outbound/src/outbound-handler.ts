// Wraps the caller's handler for one logical request: forwards every v2 callback, merges an
// upstream's fallback receipt into the flow, records the outcome (metrics, outlier detection)
// and, on a connection-level failure before any response, dispatches again to another instance
// when the request is idempotent and its body replayable; a kept-alive connection closed under
// such a request, with no other instance left to try, is replaced by a fresh one to the same
// instance, once. Every retry is taken from the retry budget of the lane of the instance that
// failed; a refused one leaves the caller with the failure. A failure of the caller's own request
// body is the caller's: never counted against the instance, never retried. An answer's
// hop-by-hop headers stay here.
import type { Dispatcher } from 'undici'
import type { Duplex, Readable } from 'node:stream'
import { FALLBACK_HEADER, type FlowContext } from '@flowtag/context'
import { mergeFallback } from '@flowtag/context/internals'
import { errorAttributes, secondsSince, type OutboundMetrics } from './metrics.ts'
import { stripResponse } from './hop-by-hop.ts'
import { select, type Route } from './select.ts'
import type { Member, ServiceTable } from './service-table.ts'

type Controller = Dispatcher.DispatchController
type Handler = Dispatcher.DispatchHandler
type IncomingHttpHeaders = Parameters<NonNullable<Handler['onResponseStart']>>[2]

/** Failures where the request cannot have reached the application. */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT'
])

/** Failures that count against an instance for outlier detection (not retried when not above). */
const INSTANCE_FAILURES = new Set([...CONNECTION_ERRORS, 'UND_ERR_HEADERS_TIMEOUT'])

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

export function isRetryable (opts: Dispatcher.DispatchOptions): boolean {
  const body = opts.body
  return IDEMPOTENT.has(opts.method) && (body == null || typeof body === 'string' || body instanceof Uint8Array)
}

/** Errors that say the caller's body broke its own promise (its length), whatever the instance did. */
const BODY_ERRORS = new Set(['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'])

/** A Node stream as undici tells one (it writes these with its stream writer). */
function isStream (body: object): body is Readable {
  return typeof (body as Readable).pipe === 'function' && typeof (body as Readable).on === 'function'
}

/** What a request sent on a kept-alive connection the other side had already given up meets. */
const STALE_ERRORS = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])

/**
 * Whether `err` is a reused connection closed before it answered. undici's SocketError carries
 * the socket's byte counts: a socket that had read bytes already served an earlier request (this
 * one got none, or headers would have started). Raw ECONNRESET/EPIPE carry no counts; they need
 * an established connection, so they qualify.
 */
export function isStaleConnection (err: unknown): boolean {
  const e = err as { code?: unknown; socket?: { bytesRead?: unknown } } | null
  if (typeof e?.code !== 'string' || !STALE_ERRORS.has(e.code)) return false
  const read = e.socket?.bytesRead
  return typeof read !== 'number' || read > 0
}

export function isConnectionError (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && CONNECTION_ERRORS.has(code)
}

/**
 * The controller handed to the caller for the whole request: it always acts on the current
 * attempt's controller, so pause/resume/abort reach the live connection after a retry.
 */
class StableController implements Controller {
  #target: Controller | null = null
  #paused = false
  #aborted = false
  #reason: Error | null = null
  rawHeaders: Controller['rawHeaders'] = null
  rawTrailers: Controller['rawTrailers'] = null

  set target (c: Controller | null) {
    this.#target = c
    if (c === null) return
    if (this.#aborted) c.abort(this.#reason as Error)
    else if (this.#paused) c.pause()
  }

  get aborted (): boolean {
    return this.#aborted || (this.#target?.aborted ?? false)
  }

  get paused (): boolean {
    return this.#paused
  }

  get reason (): Error | null {
    return this.#reason ?? this.#target?.reason ?? null
  }

  /** Aborted by the caller (not by a connection failure): never retried. */
  get abortedByCaller (): boolean {
    return this.#aborted
  }

  abort (reason: Error): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#target?.abort(reason)
  }

  pause (): void {
    this.#paused = true
    this.#target?.pause()
  }

  resume (): void {
    this.#paused = false
    this.#target?.resume()
  }

  /**
   * Lets go of the connection's controller once the request has ended (the raw headers and
   * trailers stay readable). undici 8's request() keeps this controller in a closure (its
   * handler's `abort`) that young-generation collections do not free with the request: holding
   * the connection's controller (and through it the request, its handlers and the body stream)
   * would make all of them survive each collection.
   */
  release (): void {
    this.#target = null
  }
}

export interface AttemptContext {
  table: ServiceTable
  route: Route
  tag: string | undefined
  metrics: OutboundMetrics
  maxRetries: number
  /** Send once more on a fresh connection after a stale kept-alive one (see isStaleConnection). */
  staleRetry: boolean
}

export class OutboundHandler implements Handler {
  readonly #handler: Handler
  readonly #ctx: AttemptContext
  /** Options of the current attempt (origin = the current member's). */
  #opts: Dispatcher.DispatchOptions
  readonly #controller = new StableController()
  readonly #start = performance.now()
  readonly #retryable: boolean
  /** Idempotent, replayable, the option on, and not yet used for this request. */
  #staleRetryable: boolean
  #member: Member
  /** A retry was refused by the budget: no other retry (not even a stale-connection one) for this request. */
  #refused = false
  #tried: Member[] | null = null
  #started = false
  #responded = false
  /** The caller's body failed (its error, its client gone, closed before its end): the failure is the caller's. */
  #bodyFailed = false
  /** Removes the listeners on the caller's body stream. */
  #unwatch: (() => void) | null = null
  /** The request's flow: an upstream's fallback receipt is merged into it. */
  readonly #flow: FlowContext | undefined

  /** `opts` is already addressed to `member` (its origin). */
  constructor (handler: Handler, ctx: AttemptContext, opts: Dispatcher.DispatchOptions, member: Member, flow?: FlowContext) {
    this.#handler = handler
    this.#ctx = ctx
    this.#opts = opts
    this.#member = member
    this.#flow = flow
    // An original request: it adds to its lane's retry budget (retries do not).
    member.budget?.recordRequest()
    const replayable = isRetryable(opts)
    this.#retryable = ctx.maxRetries > 0 && replayable
    this.#staleRetryable = ctx.staleRetry && replayable
    const body: unknown = opts.body
    if (!replayable && body != null && typeof body === 'object') {
      if (isStream(body)) this.#watch(body)
      // undici takes async iterables too (fetch() hands it one), though its types do not say so.
      else if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
        this.#opts = { ...opts, body: this.#guard(body as AsyncIterable<unknown>) as never }
      }
    }
  }

  /**
   * Watches the caller's body stream. Undici reports a body's failure with the body's own error
   * (e.g. ECONNRESET "aborted" from an IncomingMessage whose client went away), which looks like
   * an instance's; these listeners, added before undici's, see it first. An instance's failure
   * reaches onResponseError before undici destroys the body, so it is not mistaken for the
   * caller's.
   */
  #watch (body: Readable): void {
    if (body.errored != null || (body.destroyed && !body.readableEnded)) {
      this.#bodyFailed = true
      return
    }
    const failed = () => { this.#bodyFailed = true }
    const closed = () => { if (!body.readableEnded) this.#bodyFailed = true }
    // 'aborted': an IncomingMessage's client went away (before its 'error' and 'close').
    body.on('error', failed).on('aborted', failed).on('close', closed)
    this.#unwatch = () => { body.off('error', failed).off('aborted', failed).off('close', closed) }
  }

  /** The caller's async iterable, passed through; what it throws is the caller's failure. */
  async * #guard (body: AsyncIterable<unknown>): AsyncGenerator<unknown> {
    try {
      for await (const chunk of body) yield chunk
    } catch (err) {
      this.#bodyFailed = true
      throw err
    }
  }

  #done (): void {
    if (this.#unwatch === null) return
    this.#unwatch()
    this.#unwatch = null
  }

  /** Sends the current attempt to the picked member's pool. */
  send (): void {
    // A pool's "busy" answer is not passed on: this dispatcher emits no 'drain' of its own, and
    // each pool queues what it cannot send yet.
    this.#ctx.table.poolFor(this.#member).dispatch(this.#opts, this as never)
  }

  onRequestStart (controller: Controller, context: unknown): void {
    this.#controller.target = controller
    if (this.#started) return
    this.#started = true
    this.#handler.onRequestStart?.(this.#controller, context)
  }

  onRequestUpgrade (controller: Controller, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.#done()
    this.#responded = true
    this.#ctx.table.recordSuccess(this.#member)
    this.#handler.onRequestUpgrade?.(this.#controller, statusCode, headers, socket)
  }

  onResponseStarted (): void {
    this.#handler.onResponseStarted?.()
  }

  onBodySent (chunk: Buffer): void {
    this.#handler.onBodySent?.(chunk)
  }

  onRequestSent (): void {
    this.#handler.onRequestSent?.()
  }

  onResponseStart (controller: Controller, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.#responded = true
    this.#controller.rawHeaders = controller?.rawHeaders ?? null
    // The instance's connection fields (Connection, Keep-Alive, …) are this dispatcher's alone.
    const stripped = headers == null ? undefined : stripResponse(headers, this.#controller.rawHeaders)
    if (stripped !== undefined) {
      headers = stripped.headers as IncomingHttpHeaders
      this.#controller.rawHeaders = stripped.raw
    }
    this.#ctx.table.recordResponse(this.#member, statusCode)
    // Fallback receipt hook: a receipt written further down reaches the caller's flow (the edge).
    const receipt = this.#flow === undefined ? undefined : headers?.[FALLBACK_HEADER]
    if (receipt !== undefined) mergeFallback(this.#flow!, receipt)
    this.#handler.onResponseStart?.(this.#controller, statusCode, headers, statusMessage)
  }

  onResponseData (_controller: Controller, chunk: Buffer): void {
    this.#handler.onResponseData?.(this.#controller, chunk)
  }

  onResponseEnd (controller: Controller, trailers: IncomingHttpHeaders): void {
    this.#done()
    const attrs = this.#member.attrs
    this.#ctx.metrics.requests.add(1, attrs)
    this.#ctx.metrics.duration.record(secondsSince(this.#start), attrs)
    const tag = this.#ctx.tag
    if (tag !== undefined && this.#member.lane !== tag) this.#ctx.metrics.fallbacks.add(1, { ...attrs, 'flowtag.lane.requested': tag })
    this.#controller.rawTrailers = controller?.rawTrailers ?? null
    this.#handler.onResponseEnd?.(this.#controller, trailers)
    this.#controller.release()
  }

  onResponseError (_controller: Controller | null, err: Error): void {
    const member = this.#member
    const code = (err as { code?: unknown }).code
    // The caller's body failed (or broke its length): the caller's failure, like its abort.
    const callers = this.#bodyFailed || this.#controller.abortedByCaller || (typeof code === 'string' && BODY_ERRORS.has(code))
    this.#done()
    if (!this.#responded && !callers && typeof code === 'string' && INSTANCE_FAILURES.has(code)) {
      const next = this.#retryable && CONNECTION_ERRORS.has(code) ? this.#next() : undefined
      // The connection aged, not the instance: not counted; the fresh attempt's outcome is.
      if (next === undefined && !this.#refused && this.#staleRetryable && isStaleConnection(err) && this.#resendFresh()) return
      // Ejections are counted and logged where the table reports them (the dispatcher's onEjection).
      this.#ctx.table.recordFailure(member)
      if (next !== undefined) {
        this.#switchTo(next)
        return
      }
    }
    const attrs = errorAttributes(member.attrs, err)
    this.#ctx.metrics.requests.add(1, member.attrs)
    this.#ctx.metrics.errors.add(1, attrs)
    this.#ctx.metrics.duration.record(secondsSince(this.#start), attrs)
    this.#handler.onResponseError?.(this.#controller, err)
    this.#controller.release()
  }

  /** An instance not tried yet; undefined when there is none or the retry budget is spent. */
  #next (): Member | undefined {
    const tried = (this.#tried ??= [])
    tried.push(this.#member)
    if (tried.length > this.#ctx.maxRetries) return undefined
    let next: Member
    try {
      next = select(this.#ctx.table, this.#ctx.tag, this.#ctx.route, tried)
    } catch {
      return undefined
    }
    return this.#spend() ? next : undefined
  }

  /** Take a retry from the budget of the failed member's lane; a refusal is counted against that member. */
  #spend (): boolean {
    const budget = this.#member.budget
    if (budget === null || budget.tryRetry()) return true
    this.#refused = true
    this.#ctx.metrics.retriesRefused.add(1, this.#member.attrs)
    return false
  }

  #switchTo (next: Member): void {
    this.#ctx.metrics.retries.add(1, next.attrs)
    this.#member = next
    this.#opts = { ...this.#opts, origin: next.origin }
    this.#controller.target = null
    this.send()
  }

  /** The same instance again, over a connection of its own (the pool may hold more aged ones). */
  #resendFresh (): boolean {
    this.#staleRetryable = false
    if (!this.#spend()) return false
    this.#controller.target = null
    if (!this.#ctx.table.sendFresh(this.#member, this.#opts, this)) return false
    this.#ctx.metrics.retries.add(1, this.#member.attrs)
    return true
  }
}
