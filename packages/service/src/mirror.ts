// The mirror sender of the presets: when the tagger drew a request for mirroring
// (`decision.mirror`), a copy goes to the same service in the mirror lane as a shadow, after the
// user's answer is sent (the user never waits for it), bounded (in-flight cap, drop when full,
// never queued; timeouts; body caps), and both answers are handed to a comparer. Framework-free:
// the Fastify and Express presets capture the request and the primary's answer and call send().
import { metrics, type Attributes, type Counter, type Meter } from '@opentelemetry/api'
import { runWithFlow, shadowCopyFlow } from '@flowtag/context'
import { fallbackOf } from '@flowtag/context/internals'
import type { Dispatcher } from 'undici'
import { z } from 'zod'
import { badServiceOption } from './errors.ts'

/** One answer: status (0 when there was none: timeout, refused, connection failure), headers, body up to the cap. */
export interface ShadowAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  /** The body was longer than `maxBodyBytes` and was cut there. */
  truncated: boolean
}

/** What a comparer gets for one mirrored request. */
export interface ShadowPair {
  service: string
  /** The Fastify route pattern or the Express route path (`/orders/:id`), never the raw URL; `(no route)` when none matched. */
  route: string
  method: string
  /** The mirror lane (where the copy went). */
  lane: string
  /** The user's lane ('' when the request had none). */
  primaryLane: string
  primary: ShadowAnswer
  mirror: ShadowAnswer
  /** A second answer from the primary's lane (a shadow too), when the comparer asked for one: for learned noise. */
  secondary?: ShadowAnswer
}

/**
 * What the presets hand mirrored pairs to (implemented by @flowtag/shadow, or by the app).
 * `compare` is called once per pair, after both answers are in; it must not throw (a throw is
 * counted and dropped) and should not block (it runs on the event loop of the service).
 */
export interface ShadowComparer {
  compare (pair: ShadowPair): void
  /** Whether this route still needs a second answer of the primary's lane (to learn its noise). */
  needsSecondary?(service: string, route: string): boolean
}

/**
 * A comparer made by the preset, with the meter its figures should go to: the preset's served
 * `/metrics` when `metrics.serve` is on (where a canary's `maxDivergence` reads them), else the
 * global MeterProvider's `@flowtag/service`. E.g. `({ meter }) => createShadowComparer({ meter })`.
 */
export type ShadowComparerFactory = (context: { meter: Meter }) => ShadowComparer

const isComparer = (v: unknown): v is ShadowComparer => typeof v === 'object' && v !== null && typeof (v as ShadowComparer).compare === 'function' &&
  ((v as ShadowComparer).needsSecondary === undefined || typeof (v as ShadowComparer).needsSecondary === 'function')

/** The preset's `shadow` option. */
export const shadowOptionsSchema = z.strictObject({
  /** Gets each mirrored pair; without one, copies are still sent (and counted) but not compared. */
  comparer: z.custom<ShadowComparer | ShadowComparerFactory>((v) => typeof v === 'function' || isComparer(v),
    { message: 'expected a comparer: { compare(pair), needsSecondary?(service, route) }, or a function ({ meter }) => comparer' }).optional(),
  /** Copies in flight at most (a pair with a secondary takes two); when full, a copy is dropped (counted), never queued. @default 16 */
  maxInFlight: z.int().min(1).max(10_000).default(16),
  /** Bodies (the request's, each answer's) are kept up to this many bytes; a longer request body is not mirrored. @default 1 MiB */
  maxBodyBytes: z.int().min(0).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Time a copy may take, headers and body, in ms; then it is abandoned (status 0, counted). @default 5000 */
  timeoutMs: z.int().min(1).max(600_000).default(5000)
}).prefault({})

export type ShadowOptions = z.input<typeof shadowOptionsSchema>

/** What happened to mirrored requests, per outcome (also the `flowtag.service.mirror` counter's `outcome`). */
export interface MirrorStats {
  /** Copies sent (a secondary counts apart). */
  sent: number
  /** Copies not sent: the in-flight cap was reached. */
  dropped: number
  /** Copies not sent: the request body was over `maxBodyBytes` or could not be read again. */
  skipped: number
  /** Copies with no answer in time. */
  timeout: number
  /** Copies that failed without an answer (refused, no instance, connection). */
  failed: number
  /** Copies answered 5xx. */
  error5xx: number
  /**
   * Copies the dispatcher served from another lane (the mirror lane had no instance of this
   * service): not compared, since the answer is not the mirror lane's (a secondary that fell
   * back is left out of its pair).
   */
  fallback: number
  /** Pairs handed to the comparer. */
  compared: number
  /** Comparer calls that threw. */
  comparerErrors: number
}

/** The request as the preset captured it. */
export interface MirrorRequest {
  method: string
  /** Path and query, as received. */
  url: string
  headers: Record<string, string | string[] | undefined>
  /** The body to send again; undefined for none. */
  body: Buffer | undefined
}

/** Request headers not copied: hop-by-hop, the host (the dispatcher sets the service), lengths (recomputed), the flow (the copy has its own). */
const NOT_COPIED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect', 'host', 'content-length',
  'x-flow-tag', 'x-flow-shadow', 'baggage', 'x-flowtag-fallback'])

const NO_ANSWER: ShadowAnswer = Object.freeze({ status: 0, headers: Object.freeze({}), body: Buffer.alloc(0), truncated: false }) as ShadowAnswer

export class ShadowMirror {
  readonly service: string
  readonly #dispatcher: Dispatcher
  readonly #comparer: ShadowComparer | undefined
  readonly #maxInFlight: number
  readonly #maxBody: number
  readonly #timeoutMs: number
  readonly #warn: (obj: object, msg: string) => void
  readonly #stats: MirrorStats = { sent: 0, dropped: 0, skipped: 0, timeout: 0, failed: 0, error5xx: 0, fallback: 0, compared: 0, comparerErrors: 0 }
  #inFlight = 0
  #counter: Counter | undefined
  readonly #attributes = new Map<string, Partial<Record<keyof MirrorStats, Attributes>>>()
  readonly #meter: Meter
  #closed = false

  /**
   * @param meter where the mirror's counter goes, and what a comparer factory is given
   * @throws {FlowTagError} `FLOWTAG_SERVICE_BAD_OPTION` (`shadow.comparer`) when a factory returns no comparer
   */
  constructor (service: string, dispatcher: Dispatcher, options: z.output<typeof shadowOptionsSchema>, warn: (obj: object, msg: string) => void, meter: Meter = metrics.getMeter('@flowtag/service')) {
    this.service = service
    this.#dispatcher = dispatcher
    this.#meter = meter
    const given = options.comparer
    const comparer = typeof given === 'function' ? given({ meter }) : given
    if (comparer !== undefined && !isComparer(comparer)) throw badServiceOption('shadow.comparer', 'the factory returned no comparer: { compare(pair), needsSecondary?(service, route) }')
    this.#comparer = comparer
    this.#maxInFlight = options.maxInFlight
    this.#maxBody = options.maxBodyBytes
    this.#timeoutMs = options.timeoutMs
    this.#warn = warn
  }

  get maxBodyBytes (): number { return this.#maxBody }
  get stats (): Readonly<MirrorStats> { return { ...this.#stats } }
  /** Copies in flight now. */
  get inFlight (): number { return this.#inFlight }

  #count (outcome: keyof MirrorStats, lane: string, n = 1): void {
    this.#stats[outcome] += n
    this.#counter ??= this.#meter.createCounter('flowtag.service.mirror', { description: 'Mirrored copies by outcome (sent, dropped, skipped, timeout, failed, error5xx, fallback, compared, comparerErrors)' })
    // one attributes object per lane and outcome, made once (lanes come from the RuleSet: bounded)
    let byOutcome = this.#attributes.get(lane)
    if (byOutcome === undefined) {
      byOutcome = {}
      this.#attributes.set(lane, byOutcome)
    }
    this.#counter.add(n, byOutcome[outcome] ??= Object.freeze({ outcome, 'flowtag.lane': lane, service: this.service }))
  }

  /** The request body could not be mirrored (over the cap, or not readable again): counted. */
  skip (lane: string): void {
    this.#count('skipped', lane)
  }

  /**
   * Send the copy (and a secondary when the comparer asks) and compare when all answers are in.
   * Never throws and never waits: returns at once; failures become answers with status 0.
   */
  send (request: MirrorRequest, primary: ShadowAnswer, route: string, lane: string, primaryLane: string | undefined): void {
    if (this.#closed) return
    let secondary = false
    try {
      secondary = this.#comparer?.needsSecondary?.(this.service, route) === true
    } catch (err) {
      this.#count('comparerErrors', lane)
      this.#warn({ err }, 'flowtag shadow: comparer.needsSecondary threw')
    }
    const slots = secondary ? 2 : 1
    if (this.#inFlight + slots > this.#maxInFlight) {
      this.#count('dropped', lane, slots)
      return
    }
    this.#inFlight += slots
    const mirror = this.#copy(request, lane, lane)
    const settled = (m: ShadowAnswer | undefined, s: ShadowAnswer | undefined): void => {
      this.#inFlight -= slots
      const comparer = this.#comparer
      if (comparer === undefined || m === undefined) return
      const pair: ShadowPair = { service: this.service, route, method: request.method, lane, primaryLane: primaryLane ?? '', primary, mirror: m }
      if (s !== undefined) pair.secondary = s
      try {
        comparer.compare(pair)
        this.#count('compared', lane)
      } catch (err) {
        this.#count('comparerErrors', lane)
        this.#warn({ err }, 'flowtag shadow: comparer.compare threw')
      }
    }
    const failed = (err: unknown): void => {
      // #copy never rejects; kept so a bug here cannot become an unhandled rejection
      this.#inFlight -= slots
      this.#warn({ err }, 'flowtag shadow: mirror failed')
    }
    // most pairs have no secondary: no Promise.all (its array and promises) for them
    if (!secondary) mirror.then((m) => { settled(m, undefined) }, failed)
    else Promise.all([mirror, this.#copy(request, primaryLane, lane)]).then(([m, s]) => { settled(m, s) }, failed)
  }

  /**
   * One copy in a shadow flow of `target` (undefined: untagged, the stable lane); its answer, or
   * status 0; undefined when this service's hop served it from another lane (not that lane's answer).
   */
  async #copy (request: MirrorRequest, target: string | undefined, lane: string): Promise<ShadowAnswer | undefined> {
    this.#count('sent', lane)
    // A timer cleared when the copy settles, not AbortSignal.timeout: that one fires for every copy
    // (an abort event and a DOMException with its stack, timeoutMs later), a cost paid per copy.
    const timeout = new AbortController()
    const { signal } = timeout
    const timer = setTimeout(() => { timeout.abort(new DOMException('The mirrored copy timed out', 'TimeoutError')) }, this.#timeoutMs)
    timer.unref()
    const flow = shadowCopyFlow(target)
    try {
      const res = await runWithFlow(flow, () => this.#dispatcher.request({
        origin: `http://${this.service}`,
        path: request.url,
        method: request.method as Dispatcher.HttpMethod,
        headers: copiedHeaders(request.headers),
        body: request.method === 'GET' || request.method === 'HEAD' ? null : (request.body ?? null),
        signal
      }))
      const answer = await readAnswer(res, this.#maxBody)
      // the receipt names each hop that left its lane: this service's own entry is the first hop's
      if (fallbackOf(flow)?.split('|').some((e) => e.startsWith(`${this.service}:`)) === true) {
        this.#count('fallback', lane)
        return undefined
      }
      if (answer.status >= 500) this.#count('error5xx', lane)
      return answer
    } catch (err) {
      if (signal.aborted) this.#count('timeout', lane)
      else this.#count('failed', lane)
      return { ...NO_ANSWER, headers: { 'x-flowtag-error': codeOf(err) } }
    } finally {
      clearTimeout(timer)
    }
  }

  /** No new copies; those in flight finish on their own (their timeouts bound them). */
  close (): void {
    this.#closed = true
  }
}

function codeOf (err: unknown): string {
  const e = err as { code?: unknown, cause?: { code?: unknown }, name?: string } | null
  const code = e?.code ?? e?.cause?.code
  return typeof code === 'string' ? code : (e?.name ?? 'Error')
}

function copiedHeaders (headers: MirrorRequest['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const v = headers[name]
    if (v === undefined || NOT_COPIED.has(name.toLowerCase())) continue
    out[name] = v
  }
  return out
}

/**
 * Status, headers and the body up to `max` bytes (the rest is not read: the stream is destroyed).
 * Read with 'data' listeners, not `for await`: the async iterator costs a promise and an
 * end-of-stream watcher per copy, a third of the mirror's own CPU per copy in a profile.
 * Rejects when the body fails (the copy's signal aborting it included).
 */
function readAnswer (res: Dispatcher.ResponseData, max: number): Promise<ShadowAnswer> {
  const body = res.body
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (truncated: boolean): void => {
      body.off('data', onData)
      resolve({ status: res.statusCode, headers: res.headers as ShadowAnswer['headers'], body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), truncated })
    }
    const onData = (chunk: Buffer): void => {
      if (size + chunk.length > max) {
        chunks.push(chunk.subarray(0, max - size))
        size = max
        done(true)
        body.destroy()
        return
      }
      chunks.push(chunk)
      size += chunk.length
    }
    body.on('data', onData)
    body.once('end', () => { done(false) })
    // kept after the answer is whole: destroying a cut body emits an error (undici's
    // RequestAbortedError) that must find a listener; rejecting a settled promise does nothing
    body.on('error', reject)
  })
}

/** Collects an answer's body as it is written, up to `max` bytes. */
export class BodyCapture {
  readonly #max: number
  readonly #chunks: Buffer[] = []
  #size = 0
  /** The first chunk was made here (from a string or a Uint8Array), not the app's own Buffer. */
  #ownFirst = false
  truncated = false

  constructor (max: number) {
    this.#max = max
  }

  add (chunk: unknown, encoding?: BufferEncoding): void {
    if (chunk === undefined || chunk === null || this.truncated) return
    const given = Buffer.isBuffer(chunk)
    const buf = given ? chunk : typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk instanceof Uint8Array ? Buffer.from(chunk) : undefined
    if (buf === undefined) return
    if (this.#chunks.length === 0) this.#ownFirst = !given
    if (this.#size + buf.length > this.#max) {
      this.#chunks.push(buf.subarray(0, this.#max - this.#size))
      this.#size = this.#max
      this.truncated = true
      return
    }
    this.#chunks.push(buf)
    this.#size += buf.length
  }

  get body (): Buffer {
    // one chunk made here (the usual serialized answer, a string): that chunk, not a copy of it;
    // an app's Buffer is copied, since the app may reuse it once the answer is sent
    return this.#chunks.length === 1 && this.#ownFirst ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size)
  }
}

/** A request body the framework parsed, as bytes to send again; undefined when it cannot be (a stream). */
export function bodyBytes (body: unknown): Buffer | undefined | false {
  if (body === undefined || body === null) return undefined
  if (Buffer.isBuffer(body)) return body
  if (typeof body === 'string') return Buffer.from(body)
  if (typeof (body as { pipe?: unknown }).pipe === 'function') return false
  try {
    return Buffer.from(JSON.stringify(body))
  } catch {
    return false
  }
}
