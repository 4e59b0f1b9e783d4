// Node's own fetch() (and undici's, and every SDK built on either) made lane-aware, opt-in: the
// global dispatcher sends registered service names to a FlowTagDispatcher and every other host
// to the dispatcher that was global before, untouched.
import { isIP } from 'node:net'
import { Dispatcher, getGlobalDispatcher, setGlobalDispatcher } from 'undici'
import { z } from 'zod'
import type { Discovery } from './discovery.ts'
import { badOption as sharedBadOption, describeBadOption } from '@flowtag/errors'
import { errorCodes, OutboundError } from './errors.ts'
import { currentFlow } from '@flowtag/context'
import { ShadowGuard, shadowGuardSchema } from './shadow-guard.ts'

// undici >= 8 keeps its global dispatcher under '.2' and, for Node's bundled undici (which reads
// '.1' and speaks the older handler API), a wrapped copy under '.1'; setGlobalDispatcher writes both.
const kLegacyGlobal = Symbol.for('undici.globalDispatcher.1')
const MAX_CACHED = 1024

export const globalDispatcherOptionsSchema = z.strictObject({
  /** Exactly these host names are services (no discovery lookups); every other host passes through. */
  services: z.array(z.string().min(1)).optional(),
  /** Where to ask whether a host name is a service; default: the dispatcher's own `discovery`. */
  discovery: z
    .custom<Discovery>((v) => typeof v === 'object' && v !== null && typeof (v as Discovery).instances === 'function', {
      message: 'expected a Discovery (an object with instances())'
    })
    .optional(),
  /** How long "not a service" (no instance, or a failed lookup) is remembered, in ms. */
  negativeTtlMs: z.number().int().min(0).max(86_400_000).default(30_000)
})

export type GlobalDispatcherOptions = z.input<typeof globalDispatcherOptionsSchema>

/** What installGlobalDispatcher() returns. */
export interface GlobalDispatcherInstallation {
  /** The dispatcher now global: routes service names to the FlowTagDispatcher, the rest to `previous`. */
  readonly dispatcher: GlobalRouter
  /** The global dispatcher before the installation; non-service hosts go there. */
  readonly previous: Dispatcher
  /**
   * Restores the previous global dispatcher (both of undici's global slots, exactly as they were).
   * Returns false, changing nothing, when this installation is no longer the global dispatcher
   * (someone installed another on top: undo in reverse order). Idempotent.
   */
  uninstall(): boolean
}

/** One host name's answer: a service (kept for good), not one (kept until `until`), or still being asked. */
interface Decision {
  service: boolean
  /** performance.now() after which a negative answer is asked again; Infinity for a fixed answer. */
  until: number
  pending: Promise<void> | null
}

const PASS: Decision = { service: false, until: Infinity, pending: null }
const SERVICE: Decision = { service: true, until: Infinity, pending: null }

/**
 * Makes the process-wide undici global dispatcher lane-aware: Node's built-in `fetch()`,
 * undici's `fetch()`/`request()` without a `dispatcher`, and libraries built on them send
 * `http(s)://<service>/...` through `dispatcher` (the request's flow picks the lane, `x-flow-tag`
 * and `baggage` are added) and every other host to the previous global dispatcher, untouched.
 * Inside a shadow flow, a request that may write (any host) is refused or sent to the shadow sink,
 * by the dispatcher's `shadow` options (see FlowTagDispatcher).
 *
 * Which hosts are services:
 * - IP literals, `localhost` and `*.localhost`, and non-HTTP(S) origins: never (no lookup).
 * - With `services`: exactly the names listed.
 * - Otherwise: a name is a service when `discovery.instances(name)` gives at least one instance
 *   (healthy or not). The first request to a name waits for that one lookup; the answer is
 *   cached: "a service" for good (a service later scaled to zero then fails with
 *   `FLOWTAG_OUTBOUND_UNKNOWN_SERVICE`, it never falls back to DNS), "not a service" (zero
 *   instances, or the lookup failed) for `negativeTtlMs`.
 *
 * @param dispatcher a FlowTagDispatcher (or one composed from it) that serves the service names.
 * @param options `services`, `discovery` (default `dispatcher.discovery`), `negativeTtlMs` (@default 30000).
 * @throws OutboundError `FLOWTAG_OUTBOUND_BAD_OPTION` for a bad option, or when
 *   neither `services`, `discovery` nor `dispatcher.discovery` says how to tell services apart.
 */
export function installGlobalDispatcher (dispatcher: Dispatcher, options: GlobalDispatcherOptions = {}): GlobalDispatcherInstallation {
  if (typeof (dispatcher as { dispatch?: unknown } | null)?.dispatch !== 'function') {
    throw badOption('dispatcher', 'expected an undici Dispatcher')
  }
  const parsed = globalDispatcherOptionsSchema.safeParse(options)
  if (!parsed.success) {
    const bad = describeBadOption('@flowtag/outbound', parsed.error, { schema: globalDispatcherOptionsSchema })
    throw new OutboundError(errorCodes.BAD_OPTION, bad.message, '', undefined, bad)
  }
  const opts = parsed.data
  const discovery = opts.discovery ?? (dispatcher as { discovery?: Discovery }).discovery
  if (opts.services === undefined && discovery === undefined) {
    throw badOption('discovery', 'expected a Discovery, or "services", for a dispatcher without one')
  }
  const previous = getGlobalDispatcher()
  const previousLegacy = (globalThis as Record<symbol, unknown>)[kLegacyGlobal]
  const router = new GlobalRouter(dispatcher, previous, opts.services, discovery, opts.negativeTtlMs)
  setGlobalDispatcher(router)
  let installed = true
  return {
    dispatcher: router,
    previous,
    uninstall () {
      if (!installed) return true
      if (getGlobalDispatcher() !== router) return false
      installed = false
      setGlobalDispatcher(previous)
      // setGlobalDispatcher wrapped `previous` anew for '.1': put back the very object that was there.
      if (previousLegacy !== undefined) (globalThis as Record<symbol, unknown>)[kLegacyGlobal] = previousLegacy
      return true
    }
  }
}

/** The global dispatcher installed by installGlobalDispatcher(): a host-name switch, it owns no connections. */
export class GlobalRouter extends Dispatcher {
  readonly #flowtag: Dispatcher
  readonly #previous: Dispatcher
  readonly #discovery: Discovery | undefined
  readonly #negativeTtlMs: number
  /** The dispatcher's shadow guard (a default one for other dispatchers): shadows never write to any host. */
  readonly #guard: ShadowGuard
  /** By origin string: the fast path does not parse the URL again. */
  readonly #byOrigin = new Map<string, Decision>()
  /** By host name: origins of one host (ports, schemes) share one lookup. */
  readonly #byHost = new Map<string, Decision>()

  constructor (flowtag: Dispatcher, previous: Dispatcher, services: readonly string[] | undefined, discovery: Discovery | undefined, negativeTtlMs: number) {
    super()
    this.#flowtag = flowtag
    this.#previous = previous
    this.#negativeTtlMs = negativeTtlMs
    this.#guard = (flowtag as { shadowGuard?: ShadowGuard }).shadowGuard ?? new ShadowGuard(shadowGuardSchema.parse(undefined))
    // A fixed list answers everything up front; no lookup is ever made.
    this.#discovery = services === undefined ? discovery : undefined
    if (services !== undefined) for (const s of services) this.#byHost.set(s.toLowerCase(), SERVICE)
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const flow = currentFlow()
    if (flow?.shadow === true && this.#guard.intercept(flow, opts, handler, originHost(opts.origin))) return true
    const decision = this.#decide(opts.origin)
    if (decision.pending === null) return (decision.service ? this.#flowtag : this.#previous).dispatch(opts, handler)
    // The first request to a host name waits for the one lookup (the flow is kept: promise
    // reactions run in the caller's async context).
    decision.pending.then(() => {
      const target = decision.service ? this.#flowtag : this.#previous
      try {
        target.dispatch(opts, handler)
      } catch (err) {
        handler.onResponseError?.(null as never, err as Error)
      }
    })
    return true
  }

  /** Whether `host` is routed as a service (looks it up if needed); for tests and health pages. */
  async isService (host: string): Promise<boolean> {
    const d = this.#hostDecision(host.toLowerCase())
    if (d.pending !== null) await d.pending
    return d.service
  }

  #decide (origin: Dispatcher.DispatchOptions['origin']): Decision {
    if (origin == null || origin === '') return PASS
    if (typeof origin !== 'string') return this.#decideUrl(origin)
    const cached = this.#byOrigin.get(origin)
    if (cached !== undefined && (cached.until === Infinity || cached.until > performance.now())) return cached
    let url: URL
    try {
      url = new URL(origin)
    } catch {
      return PASS
    }
    const d = this.#decideUrl(url)
    if (this.#byOrigin.size >= MAX_CACHED) this.#byOrigin.clear()
    this.#byOrigin.set(origin, d)
    return d
  }

  #decideUrl (url: URL): Decision {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return PASS
    return this.#hostDecision(url.hostname)
  }

  #hostDecision (host: string): Decision {
    if (host === 'localhost' || host.endsWith('.localhost') || isIP(host.startsWith('[') ? host.slice(1, -1) : host) !== 0) return PASS
    const cached = this.#byHost.get(host)
    if (cached !== undefined && (cached.pending !== null || cached.until > performance.now())) return cached
    if (this.#discovery === undefined) return PASS
    const d: Decision = { service: false, until: Infinity, pending: null }
    d.pending = this.#discovery.instances(host).then(
      (list) => {
        d.service = list.length > 0
        d.until = d.service ? Infinity : performance.now() + this.#negativeTtlMs
        d.pending = null
      },
      () => {
        d.until = performance.now() + this.#negativeTtlMs
        d.pending = null
      }
    )
    if (this.#byHost.size >= MAX_CACHED) this.#byHost.clear()
    this.#byHost.set(host, d)
    return d
  }

  // It owns no connections: the FlowTagDispatcher and the previous dispatcher are closed by their owners.
  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    if (callback === undefined) return Promise.resolve()
    queueMicrotask(callback)
  }

  override destroy (): Promise<void>
  override destroy (err: Error | null): Promise<void>
  override destroy (callback: () => void): void
  override destroy (err: Error | null, callback: () => void): void
  override destroy (a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const callback = typeof a === 'function' ? a : b
    if (callback === undefined) return Promise.resolve()
    queueMicrotask(callback)
  }
}

function originHost (origin: Dispatcher.DispatchOptions['origin']): string {
  try {
    return origin == null ? '' : new URL(String(origin)).host
  } catch {
    return ''
  }
}

function badOption (field: string, problem: string): OutboundError {
  const bad = sharedBadOption('@flowtag/outbound', field, problem)
  return new OutboundError(errorCodes.BAD_OPTION, bad.message, '', undefined, bad)
}
