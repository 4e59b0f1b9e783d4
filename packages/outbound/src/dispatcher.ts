// The discovery-aware undici Dispatcher: `http://<service>/path` goes to an instance of
// <service> in the request's lane, picked by weight, through one Pool per instance.
import { Dispatcher } from 'undici'
import { currentFlow } from '@flowtag/context'
import type { Discovery } from './discovery.ts'
import { OutboundError, errorCodes } from './errors.ts'
import { defaultPoolFactory, type InstancePoolOptions, type PoolFactory } from './instance-pool.ts'
import { outboundHeaders } from './flow-headers.ts'
import { createMetrics, errorAttributes, type OutboundMetrics } from './metrics.ts'
import { parseOptions, type OutboundOptions, type ResolvedOptions } from './options.ts'
import { policiesFor } from './policies.ts'
import { OutboundHandler, type AttemptContext } from './outbound-handler.ts'
import { select, type Route } from './select.ts'
import { ServiceTable, type Member } from './service-table.ts'
import { tagLossCheck } from './tag-loss-hook.ts'
import { noteFallback } from './receipts.ts'
import { ShadowGuard } from './shadow-guard.ts'

type Handler = Dispatcher.DispatchHandler
type DispatchOptions = Dispatcher.DispatchOptions

interface Target {
  service: string
  /** Host header value: the service name (and port) as the caller wrote it. */
  host: string
  protocol: string
  key: string
}

interface ServiceEntry {
  table: ServiceTable
  /** The last attempt context handed out; reused while its route and tag are the request's. */
  ctx: AttemptContext | null
  /** The first load of the list; null once loaded. */
  ready: Promise<void> | null
  unsubscribe: () => void
}

export interface LaneSnapshot {
  instances: number
  available: number
  ejected: number
  /** Available instances within their warm-up window. */
  warming: number
  /** Whether the warming instances get less than their weight (false when more than half of the lane warms). */
  heldBack: boolean
  /** Retry budget of the lane: original requests and retries within its interval, retries refused so far. */
  retryBudget?: { requests: number; retries: number; refused: number }
}

export interface ServiceSnapshot {
  instances: number
  available: number
  /** host:port of the ejected instances. */
  ejected: string[]
  /** Open undici Pools (one per instance that has been used). */
  pools: number
  lanes: Record<string, LaneSnapshot>
}

const MAX_CACHED_ORIGINS = 1024
// compose() returns a Proxy of this dispatcher, and #private fields are unreachable through a
// Proxy: methods callable on a composed dispatcher reach the real instance through this symbol.
const kSelf = Symbol('flowtag.outbound.self')

/**
 * An undici `Dispatcher` that routes by service name: a request to `http://<service>/path` goes to a
 * healthy instance of `<service>` in the current flow's lane (`currentTag()`), else per the lane
 * rules (`stableLane`, `strict`, `lanes`), picked by weight (warm-up ramps new instances), through
 * one undici Pool per instance; connection failures are retried on another instance (`maxRetries`,
 * within the retry budget) and failing instances ejected (`outlier`). Other origins pass through.
 * Use it as `dispatcher` of undici's `request`/`fetch`, or as @fastify/reply-from's `undici`.
 *
 * @param options `OutboundOptions` (zod-validated: `discovery` required; the README's options
 *   table gives every default)
 * @throws {OutboundError} `FLOWTAG_OUTBOUND_BAD_OPTION` from the constructor, naming the field.
 *   A request fails (through its handler, never thrown) with an `OutboundError` of `statusCode`
 *   503: `FLOWTAG_OUTBOUND_UNKNOWN_SERVICE`, `FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE`,
 *   `FLOWTAG_OUTBOUND_ALL_EJECTED`, `FLOWTAG_OUTBOUND_DISCOVERY_FAILED` or `FLOWTAG_OUTBOUND_CLOSED`.
 * @see packages/outbound/README.md
 */
export class FlowTagDispatcher extends Dispatcher {
  readonly #opts: ResolvedOptions
  readonly #metrics: OutboundMetrics
  readonly #poolOptions: InstancePoolOptions
  readonly #factory: PoolFactory
  readonly #defaults: { stable: string; strict: boolean }
  readonly #services = new Map<string, ServiceEntry>()
  readonly #targets = new Map<string, Target>()
  // One-entry cache in front of #targets: a gateway route calls one service over and over.
  #lastOrigin = ''
  #lastTarget: Target | null = null
  #closed = false
  readonly #guard: ShadowGuard
  readonly [kSelf]: FlowTagDispatcher = this

  constructor (options: OutboundOptions) {
    super()
    this.#opts = parseOptions(options)
    this.#metrics = createMetrics(this.#opts.meter)
    this.#defaults = { stable: this.#opts.stableLane, strict: this.#opts.strict }
    this.#poolOptions = {
      connections: this.#opts.connections,
      connectTimeout: this.#opts.connectTimeout,
      headersTimeout: this.#opts.headersTimeout,
      bodyTimeout: this.#opts.bodyTimeout,
      keepAliveTimeout: this.#opts.keepAliveTimeout
    }
    this.#factory = this.#opts.factory ?? defaultPoolFactory
    this.#guard = new ShadowGuard(this.#opts.shadow)
  }

  /** The shadow write guard of this dispatcher (the global fetch router applies it to other hosts too). */
  get shadowGuard (): ShadowGuard {
    return this[kSelf].#guard
  }

  override dispatch (opts: DispatchOptions, handler: Handler): boolean {
    if (this.#closed) {
      handler.onResponseError?.(null as never, new OutboundError(errorCodes.CLOSED, 'the outbound dispatcher is closed', ''))
      return false
    }
    let target: Target
    try {
      target = this.#target(opts.origin)
    } catch (err) {
      handler.onResponseError?.(null as never, err as Error)
      return true
    }
    // Captured now: the caller's async context is the request's flow.
    const flow = currentFlow()
    // A shadow never writes: refused (or sent to the sink) before any routing.
    if (flow?.shadow === true && this.#guard.intercept(flow, opts, handler, target.service)) return true
    // Tag-loss hook (@flowtag/context): counted; in strict mode the call fails here.
    const lost = tagLossCheck(flow, opts.headers)
    if (lost !== undefined) {
      handler.onResponseError?.(null as never, lost)
      return true
    }
    const entry = this.#entry(target)
    if (entry.ready === null) return this.#route(entry, target, flow, opts, handler)
    entry.ready.then(
      () => {
        try {
          this.#route(entry, target, flow, opts, handler)
        } catch (err) {
          // Not thrown into a promise nobody awaits: the caller hears of it through its handler.
          handler.onResponseError?.(null as never, err as Error)
        }
      },
      (err: Error) => handler.onResponseError?.(null as never, err)
    )
    return true
  }

  #route (entry: ServiceEntry, target: Target, flow: ReturnType<typeof currentFlow>, opts: DispatchOptions, handler: Handler): boolean {
    const table = entry.table
    let tag = flow?.tag === '' ? undefined : flow?.tag
    let route: Route
    let member
    let leased: string | undefined
    try {
      const cfg = this.#opts.lanes?.(table.service)
      // Reused while the service's configuration stays the same (one object less per request).
      route = table.routeFor(cfg, this.#defaults)
      // A candidate lane whose lease ran out (@flowtag/rules) is no longer routed: stable serves.
      const expired = cfg?.expired
      if (expired !== undefined && tag !== undefined && expired.includes(tag)) {
        leased = tag
        tag = route.stable
      }
      member = select(table, tag, route)
    } catch (err) {
      const attrs = { service: target.service, lane: tag ?? table.stableLane, instance: '' }
      this.#metrics.requests.add(1, attrs)
      this.#metrics.errors.add(1, errorAttributes(attrs, err))
      handler.onResponseError?.(null as never, err as Error)
      return true
    }
    if (flow !== undefined) {
      // Fallback receipt hook (@flowtag/context): where and why this request left its lane.
      if (leased !== undefined) noteFallback(flow, table, leased, member.lane, 'lease-expired')
      else if (tag !== undefined && member.lane !== tag) noteFallback(flow, table, tag, member.lane)
    }
    const headers = outboundHeaders(opts.headers, flow, target.host, this.#opts.signTag)
    const attemptOpts: DispatchOptions & { servername?: string } = { ...opts, origin: member.origin, headers }
    // What undici would derive from our Host header, given up front: deriving it costs an isIP() per request.
    if (headers.host === target.host) attemptOpts.servername = target.service
    // Read-only to the handler, so one object serves every request of the same route and tag.
    let ctx = entry.ctx
    if (ctx === null || ctx.route !== route || ctx.tag !== tag) ctx = entry.ctx = { table, route, tag, metrics: this.#metrics, maxRetries: this.#opts.maxRetries, staleRetry: this.#opts.staleRetry }
    new OutboundHandler(handler, ctx, attemptOpts, member, flow).send()
    return true
  }

  /** Ejections are logged and counted, never silent; readmissions are logged at info. */
  #onEjection (member: Member, ejected: boolean, untilMs: number): void {
    const log = { service: member.attrs.service, lane: member.lane, instance: member.attrs.instance }
    if (ejected) {
      this.#metrics.ejections.add(1, member.attrs)
      this.#opts.logger.warn({ ...log, ejectedForMs: untilMs - member.lastEjectedAt, timesEjected: member.timesEjected }, 'instance ejected after consecutive failures')
    } else this.#opts.logger.info(log, 'ejected instance readmitted')
  }

  #target (origin: DispatchOptions['origin']): Target {
    if (origin == null || origin === '') throw new OutboundError(errorCodes.UNKNOWN_SERVICE, 'the request has no origin (expected http://<service>/...)', '')
    if (typeof origin !== 'string') return toTarget(origin)
    if (origin === this.#lastOrigin && this.#lastTarget !== null) return this.#lastTarget
    let target = this.#targets.get(origin)
    if (target === undefined) {
      let url: URL
      try {
        url = new URL(origin)
      } catch {
        throw new OutboundError(errorCodes.UNKNOWN_SERVICE, `invalid origin "${origin}"`, '')
      }
      target = toTarget(url)
      if (this.#targets.size >= MAX_CACHED_ORIGINS) this.#targets.clear()
      this.#targets.set(origin, target)
    }
    this.#lastOrigin = origin
    this.#lastTarget = target
    return target
  }

  /** The service's table; the first request for a service starts its watch and initial load. */
  #entry (target: Target): ServiceEntry {
    let entry = this.#services.get(target.key)
    if (entry !== undefined) return entry
    const table = new ServiceTable(
      {
        service: target.service,
        labelKey: this.#opts.labelKey,
        protocol: target.protocol,
        poolOptions: this.#poolOptions,
        factory: this.#factory,
        outlier: this.#opts.outlier,
        ...policiesFor(target.service, this.#opts),
        onEjection: (m, ejected, until) => this.#onEjection(m, ejected, until)
      },
      // Corrected by table.routeFor on each request when lanes() names another stable lane.
      this.#opts.stableLane
    )
    const discovery = this.#opts.discovery
    let changed = false
    const unsubscribe = discovery.subscribe(target.service, (change) => {
      changed = true
      // With the change set (when the source gives one) a small change costs O(changed).
      table.update(change.instances, change)
    })
    const created: ServiceEntry = { table, ctx: null, ready: null, unsubscribe }
    created.ready = discovery.instances(target.service).then(
      (list) => {
        // A change that arrived while loading is newer than this list.
        if (!changed) table.update(list)
        created.ready = null
      },
      (err: unknown) => {
        // Forget the entry so the next request tries the registry cache again.
        unsubscribe()
        if (this.#services.get(target.key) === created) this.#services.delete(target.key)
        throw new OutboundError(errorCodes.DISCOVERY_FAILED, `discovery of "${target.service}" failed`, target.service, undefined, { cause: err })
      }
    )
    this.#services.set(target.key, created)
    entry = created
    return entry
  }

  /** The Discovery this dispatcher resolves service names through (as given; never closed here). */
  get discovery (): Discovery {
    return this[kSelf].#opts.discovery
  }

  /** Routing state of a service this dispatcher has seen (for health pages, logs and tests). */
  snapshot (service: string, protocol = 'http:'): ServiceSnapshot | undefined {
    const table = this[kSelf].#services.get(`${protocol}//${service}`)?.table
    if (table === undefined) return undefined
    const lanes: Record<string, LaneSnapshot> = {}
    const ejected: string[] = []
    for (const [name, lane] of table.lanes) {
      const snap: LaneSnapshot = { instances: lane.members.length, available: lane.table?.size ?? 0, ejected: lane.ejected, warming: lane.warming, heldBack: lane.heldBack }
      const budget = table.budgets?.lanes.get(name)
      if (budget !== undefined) snap.retryBudget = { ...budget.window(), refused: budget.refused }
      lanes[name] = snap
    }
    for (const m of table.members.values()) if (m.ejectedUntil !== 0) ejected.push(m.attrs.instance)
    return { instances: table.members.size, available: table.available, ejected, pools: table.openPools, lanes }
  }

  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    const done = this[kSelf].#shutdown()
    if (callback === undefined) return done
    done.then(callback, callback)
  }

  override destroy (): Promise<void>
  override destroy (err: Error | null): Promise<void>
  override destroy (callback: () => void): void
  override destroy (err: Error | null, callback: () => void): void
  override destroy (a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null)
    const callback = typeof a === 'function' ? a : b
    const done = this[kSelf].#shutdown(err)
    if (callback === undefined) return done
    done.then(callback, callback)
  }

  /** Stops watching every service and closes (or destroys, when given an error) every pool. */
  async #shutdown (destroyWith?: Error | null): Promise<void> {
    this.#closed = true
    const entries = [...this.#services.values()]
    this.#services.clear()
    for (const e of entries) e.unsubscribe()
    await Promise.all(entries.map((e) => (destroyWith === undefined ? e.table.close() : e.table.destroy(destroyWith))))
    await this.#guard.close()
  }
}

function toTarget (url: URL): Target {
  const service = url.hostname
  return { service, host: url.host, protocol: url.protocol, key: `${url.protocol}//${service}` }
}
