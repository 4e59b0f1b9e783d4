// The preset's framework-free core: one object per service that owns the Nacos client, the
// registration, the RuleStore, the request tagger and the lane-aware outbound dispatcher.
import { FlowTagger, type RuleStoreLike } from '@flowtag/context'
import { FlowtagError } from '@flowtag/errors'
import { NacosClient, NacosRegistration, type Discovery, type ListenAddress, type NacosClientOptions } from '@flowtag/nacos'
import { FlowtagDispatcher } from '@flowtag/outbound'
import { createRuleStore, nacosSource, serviceLanes, staticSource, type RuleStore } from '@flowtag/rules'
import { fetch as undiciFetch, type RequestInfo, type RequestInit, type Response } from 'undici'
import { asServiceOption, errorCodes } from './errors.ts'
import { ServiceMetrics } from './metrics.ts'
import { parseServiceOptions, type FlowTagServiceOptions, type ResolvedServiceOptions, type RuleStoreInput, type ServiceLogger } from './options.ts'

/** `fetch` bound to the service's dispatcher: `http://<service>/path` goes to an instance in the request's lane. */
export type ServiceFetch = (input: RequestInfo, init?: Omit<RequestInit, 'dispatcher'>) => Promise<Response>

/** Instance metadata key carrying the version of the RuleSet the instance applies. */
export const RULES_VERSION_METADATA = 'flowtag.rules.version'

/** What a `/ready` probe answers: 200 with `{ status: 'ready' }`, else 503 with the reasons. */
export interface Readiness {
  ready: boolean
  body: { status: 'ready' } | { status: 'not ready', registered: boolean, draining: boolean }
}

const silent: ServiceLogger = { debug () {}, info () {}, warn () {}, error () {} }

/**
 * One service made lane-aware. Create it with {@link createFlowTagService}; the Fastify plugin and
 * the Express middleware are thin adapters over it. Lifecycle:
 *
 * 1. `prepare()` before listening: with `registration.failFast`, ping Nacos; wait for the first
 *    RuleSet (up to `rules.startTimeoutMs`).
 * 2. `start(server.address())` once listening: register in Nacos.
 * 3. `drain()` on shutdown: deregister, report not ready, keep serving `registration.drainMs`.
 * 4. `close()`: drain if not done, then close the dispatcher, the RuleStore and the Nacos client
 *    (each only if this service created it).
 */
export class FlowTagService {
  /** Service name in Nacos. */
  readonly name: string
  /** This instance's lane label, when given. */
  readonly version: string | undefined
  readonly mode: 'edge' | 'service'
  /** Return the fallback receipt (`x-flowtag-fallback`) on responses: always for services, with `debug` at the edge. */
  readonly receipts: boolean
  readonly healthPath: string | false
  readonly readyPath: string | false
  readonly logger: ServiceLogger
  readonly nacos: NacosClient
  /** Where service names are resolved (the Nacos naming client's local cache). */
  readonly discovery: Discovery
  /** The Nacos registration; undefined with `registration: false`. */
  readonly registration: NacosRegistration | undefined
  /** The rules in force (lanes per service, and the edge's decisions); undefined when none were given. */
  readonly rules: RuleStore | RuleStoreInput | undefined
  /** Decides (edge) or carries (service) each request's lane. */
  readonly tagger: FlowTagger
  /** undici dispatcher for `http://<service>/...`: the request's lane, by weight, stable fallback. */
  readonly dispatcher: FlowtagDispatcher
  /** undici `fetch` through `dispatcher`. */
  readonly fetch: ServiceFetch
  /** Per-lane server metrics; undefined with `metrics: false`. */
  readonly metrics: ServiceMetrics | undefined
  readonly #ownNacos: boolean
  readonly #ownRules: boolean
  #draining = false
  #drained: Promise<void> | undefined
  #closed: Promise<void> | undefined

  constructor (options: FlowTagServiceOptions) {
    const o: ResolvedServiceOptions = parseServiceOptions(options)
    this.name = o.service
    this.version = o.version
    this.mode = o.mode
    this.receipts = o.mode === 'service' || o.debug
    this.healthPath = o.healthPath
    this.readyPath = o.readyPath
    this.logger = o.logger ?? silent
    const log = this.logger

    // Nothing below opens a connection until the RuleStore, which is created last.
    this.#ownNacos = !(o.nacos instanceof NacosClient)
    this.nacos = o.nacos instanceof NacosClient ? o.nacos : createClient(o.nacos, log)
    this.discovery = this.nacos.naming
    this.registration = o.registration === false
      ? undefined
      : new NacosRegistration(this.nacos, { ...o.registration, service: o.service, ...(o.version === undefined ? {} : { version: o.version }), logger: log })

    // The tagger and the dispatcher read the rules through this view: the store comes last.
    let store: RuleStore | RuleStoreInput | undefined
    const view: RuleStoreLike = {
      get compiled () { return store?.compiled },
      onChange: (listener) => store?.onChange(listener) ?? (() => {})
    }
    try {
      this.tagger = new FlowTagger({
        mode: o.mode,
        ...(o.rules === undefined ? {} : { rules: view }),
        ...(o.trust === undefined ? {} : { trust: o.trust as never }),
        otel: o.otel,
        logger: log
      })
    } catch (err) {
      // the tagger's options are ours at the top level (mode, trust, otel)
      throw asServiceOption(err, '', 'trust')
    }
    try {
      this.dispatcher = new FlowtagDispatcher({
        ...o.outbound,
        discovery: this.discovery,
        // Per request: the service's lanes from the RuleSet in force (stable, strict, weights).
        lanes: (service) => serviceLanes(view.compiled, service)
      })
    } catch (err) {
      throw asServiceOption(err, 'outbound')
    }
    this.fetch = (input, init) => undiciFetch(input, { ...init, dispatcher: this.dispatcher })

    this.#ownRules = o.rules !== undefined && o.rules.kind !== 'store'
    if (o.rules?.kind === 'store') {
      store = o.rules.store
    } else if (o.rules?.kind === 'nacos') {
      const r = o.rules.options
      store = createRuleStore({
        source: nacosSource({ config: this.nacos.config, dataId: r.dataId, group: r.group }),
        ...(r.cacheFile === undefined ? {} : { cacheFile: r.cacheFile }),
        startTimeoutMs: r.startTimeoutMs,
        logger: log
      })
    } else if (o.rules?.kind === 'document') {
      store = createRuleStore({ source: staticSource(o.rules.document), logger: log })
    }
    this.rules = store
    this.metrics = o.metrics ? new ServiceMetrics(o.service, o.version, () => view.compiled?.ruleSet.version) : undefined

    // Each instance says in Nacos which rule version it applies: the canary waits for all of them.
    const registration = this.registration
    if (registration !== undefined && store !== undefined) {
      const report = (version: number | undefined): void => {
        if (version === undefined) return
        registration.updateMetadata({ [RULES_VERSION_METADATA]: String(version) }).catch(() => {})
      }
      report(store.compiled?.ruleSet.version)
      store.onChange((next) => report(next.version))
    }
  }

  /** Registered (or not registering at all) and not draining: what `/ready` reports. */
  get ready (): boolean {
    return this.registration === undefined ? !this.#draining : this.registration.ready
  }

  get draining (): boolean {
    return this.#draining
  }

  /** The `/ready` answer (status code and body are the adapters' to send). */
  readiness (): Readiness {
    if (this.ready) return { ready: true, body: { status: 'ready' } }
    return { ready: false, body: { status: 'not ready', registered: this.registration?.registered ?? false, draining: this.#draining } }
  }

  /**
   * Before listening: with `registration.failFast`, check that Nacos answers; then wait for the
   * first RuleSet (at most `rules.startTimeoutMs`; it never rejects for want of rules).
   * @throws {FlowtagError} `FLOWTAG_SERVICE_CLOSED`; `FLOWTAG_NACOS_UNREACHABLE` with failFast.
   */
  async prepare (): Promise<void> {
    this.#assertOpen()
    await this.registration?.check()
    await this.rules?.ready
  }

  /**
   * Once listening: register with the address listened on (`registration.ip`/`port` win).
   * @throws {FlowtagError} `FLOWTAG_SERVICE_CLOSED`; with failFast, the registration error.
   */
  async start (address: ListenAddress | undefined): Promise<void> {
    this.#assertOpen()
    await this.registration?.start(address)
  }

  /** Deregister, report not ready, then keep serving `registration.drainMs`. Idempotent. */
  drain (): Promise<void> {
    this.#draining = true
    this.#drained ??= this.registration?.drain() ?? Promise.resolve()
    return this.#drained
  }

  /**
   * Deregister and drain (if not done), then close the dispatcher, the RuleStore and the Nacos
   * client, each only if this service created it. Idempotent; never rejects.
   */
  close (): Promise<void> {
    this.#closed ??= this.#close()
    return this.#closed
  }

  async #close (): Promise<void> {
    await this.drain()
    const steps: Array<[string, () => Promise<void> | undefined]> = [
      ['outbound', () => this.dispatcher.close()],
      ['rules', () => (this.#ownRules ? (this.rules as RuleStore).close() : undefined)],
      ['registration', () => this.registration?.close()],
      ['nacos', () => (this.#ownNacos ? this.nacos.close() : undefined)]
    ]
    for (const [what, step] of steps) {
      try {
        await step()
      } catch (err) {
        this.logger.warn({ err, closing: what }, 'flowtag service: close step failed')
      }
    }
  }

  #assertOpen (): void {
    if (this.#closed !== undefined) throw new FlowtagError(errorCodes.CLOSED, `@flowtag/service: "${this.name}" is closed`)
  }
}

/**
 * Compose a lane-aware service: Nacos client (or the one given), registration, RuleStore fed by
 * the config center, request tagger and lane-aware dispatcher. Opens nothing but the rule
 * source; call `prepare()`, `start(address)` and `close()` (the adapters do).
 * @throws {FlowtagError} `FLOWTAG_SERVICE_BAD_OPTION` naming the field (`nacos.serverAddr`, `rules.dataId`, `mode`).
 */
export function createFlowTagService (options: FlowTagServiceOptions): FlowTagService {
  return new FlowTagService(options)
}

function createClient (options: NacosClientOptions, log: ServiceLogger): NacosClient {
  const child = (log as { child?: (b: object) => ServiceLogger }).child
  try {
    // gRPC (pushes, connection-scoped instances) where the server offers it, HTTP otherwise.
    return new NacosClient({ logger: typeof child === 'function' ? child.call(log, { module: 'nacos' }) : log, transport: 'auto', ...options })
  } catch (err) {
    throw asServiceOption(err, 'nacos')
  }
}
