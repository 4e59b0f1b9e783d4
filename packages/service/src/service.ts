// The preset's framework-free core: one object per service that owns the Nacos client, the
// registration, the RuleStore, the request tagger and the lane-aware outbound dispatcher.
import { mkdirSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { FlowTagger, type RuleStoreLike, type SigningOptions } from '@flowtag/context'
import { FlowTagError } from '@flowtag/errors'
import { NacosClient, presetClientOptions, type PresetApp, NacosRegistration, readiness, type NamingDiscovery, type ListenAddress, type NacosClientOptions, type Readiness } from '@flowtag/nacos'
import { FlowTagDispatcher, type Discovery as RoutingDiscovery, type LanesResolver } from '@flowtag/outbound'
import { createRuleStore, nacosSource, RULES_VERSION_METADATA, serviceLanes, staticSource, type RuleStore } from '@flowtag/rules'
import { fetch as undiciFetch, type RequestInfo, type RequestInit, type Response } from 'undici'
import { asServiceOption, errorCodes } from './errors.ts'
import { ServiceMetrics } from './metrics.ts'
import { ShadowMirror } from './mirror.ts'
import { PrometheusEndpoint } from './prometheus.ts'
import { parseServiceOptions, type FlowTagServiceOptions, type ResolvedServiceOptions, type RuleStoreInput, type ServiceLogger } from './options.ts'

/** `fetch` bound to the service's dispatcher: `http://<service>/path` goes to an instance in the request's lane. */
export type ServiceFetch = (input: RequestInfo, init?: Omit<RequestInit, 'dispatcher'>) => Promise<Response>

/** Instance metadata key carrying the version of the RuleSet the instance applies (defined once in @flowtag/rules). */
export { RULES_VERSION_METADATA }

/**
 * The service's lane routing, for the other transports' clients to route as its HTTP calls do:
 * `new FlowTagGrpc({ ...app.flowtag.routing })`, `kafkaConsumer({ ...app.flowtag.routing, service, ... })`.
 * Exactly the shared lane-routing options (`laneRoutingSchema` of `@flowtag/outbound/lanes`).
 */
export interface ServiceRouting {
  /** The Nacos naming client (its cache and pushes), as the routing contract of @flowtag/outbound reads it. */
  readonly discovery: RoutingDiscovery
  /** The dispatcher's `outbound.labelKey`. @default 'version' */
  readonly labelKey: string
  /** The dispatcher's `outbound.stableLane`. @default 'stable' */
  readonly stableLane: string
  /** The dispatcher's `outbound.strict`. @default false */
  readonly strict: boolean
  /** A service's lanes from the RuleSet in force (stable, strict, weights), read per call. */
  readonly lanes: LanesResolver
  /** The service's `signing` (`{ keys, ttlSeconds }`), when given: hops are signed with its first key. */
  readonly signing?: SigningOptions
}

/** What a `/ready` probe answers (defined once in @flowtag/nacos, whose Fastify plugin serves it). */
export type { Readiness }

const silent: ServiceLogger = { debug () {}, info () {}, warn () {}, error () {} }

/** The coded routing error behind a failed fetch (a FlowTagError with a status), if that is what it is. */
function routingError (err: unknown): FlowTagError | undefined {
  const cause = (err as { cause?: unknown } | null)?.cause
  return cause instanceof FlowTagError && cause.statusCode !== undefined ? cause : undefined
}

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
  readonly discovery: NamingDiscovery
  /** The Nacos registration; undefined with `registration: false`. */
  readonly registration: NacosRegistration | undefined
  /** The rules in force (lanes per service, and the edge's decisions); undefined when none were given. */
  readonly rules: RuleStore | RuleStoreInput | undefined
  /** Decides (edge) or carries (service) each request's lane. */
  readonly tagger: FlowTagger
  /** undici dispatcher for `http://<service>/...`: the request's lane, by weight, stable fallback. */
  readonly dispatcher: FlowTagDispatcher
  /** The lane routing of `dispatcher`, for gRPC clients and message consumers: `new FlowTagGrpc({ ...app.flowtag.routing })`. */
  readonly routing: ServiceRouting
  /** undici `fetch` through `dispatcher`. */
  readonly fetch: ServiceFetch
  /** The mirror sender: copies of requests drawn by a `mirror` rule, and their comparison (`stats`). */
  readonly mirror: ShadowMirror
  /**
   * Routes (or paths) that are no lane's traffic: `healthPath`, `readyPath`, `metrics.path` and
   * `metrics.excludeRoutes`. The presets never mirror them (a scrape or a probe copied into the
   * mirror lane would be load and a pair of no use) and the metrics do not count them.
   */
  readonly notTraffic: ReadonlySet<string>
  /** Per-lane server metrics; undefined with `metrics: false`. */
  readonly metrics: ServiceMetrics | undefined
  /**
   * With `metrics: { serve: true }`: the route the adapters answer with `prometheus.text()`, and
   * the endpoint (its MeterProvider holds the preset's and the dispatcher's instruments).
   */
  readonly prometheus: { path: string, text: () => Promise<string> } | undefined
  readonly #prometheus: PrometheusEndpoint | undefined
  /** Folder of the disk snapshots (rules, instances, configs); undefined when off or not writable. */
  readonly cacheDir: string | undefined
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
    this.notTraffic = new Set([o.healthPath, o.readyPath, ...untracked(o)].filter((r): r is string => r !== false))
    this.logger = o.logger ?? silent
    const log = this.logger
    const served = typeof o.metrics === 'object' && o.metrics.serve && o.metrics.path !== false ? o.metrics.path : undefined
    this.#prometheus = served === undefined ? undefined : new PrometheusEndpoint(o.service, o.version)
    const endpoint = this.#prometheus
    this.prometheus = endpoint === undefined || served === undefined ? undefined : { path: served, text: () => endpoint.text() }

    this.cacheDir = prepareCacheDir(o.cacheDir === false ? undefined : (o.cacheDir ?? defaultCacheDir(o.service)), log)

    // Nothing below opens a connection until the RuleStore, which is created last.
    this.#ownNacos = !(o.nacos instanceof NacosClient)
    this.nacos = o.nacos instanceof NacosClient
      ? o.nacos
      : createClient(this.cacheDir === undefined || 'cacheDir' in o.nacos ? o.nacos : { ...o.nacos, cacheDir: join(this.cacheDir, 'nacos') }, log, {
        service: o.service,
        version: o.version,
        env: o.registration === false ? undefined : o.registration.env
      })
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
        // With signing keys, a service honours only signed tags: a forged plain one is ignored.
        ...(o.trust !== undefined ? { trust: o.trust as never } : o.signing !== undefined && o.mode === 'service' ? { trust: { signed: { keys: o.signing.keys } } } : {}),
        otel: o.otel,
        // a `services.<name>.mirror` of the RuleSet applies to this service's requests
        service: o.service,
        logger: log
      })
    } catch (err) {
      // the tagger's options are ours at the top level (mode, trust, otel)
      throw asServiceOption(err, '')
    }
    // One routing for every transport: the dispatcher's, and what `routing` hands to gRPC and consumers.
    this.routing = Object.freeze({
      discovery: this.discovery,
      labelKey: o.outbound.labelKey,
      stableLane: o.outbound.stableLane,
      strict: o.outbound.strict,
      // Per call: the service's lanes from the RuleSet in force (stable, strict, weights).
      lanes: (service: string) => serviceLanes(view.compiled, service),
      ...(o.signing === undefined ? {} : { signing: o.signing })
    })
    // `signing` at the top signs the hops; the deprecated `outbound.signTag` only without it (the
    // two together are refused by the options).
    const { signTag, ...outbound } = o.outbound
    try {
      this.dispatcher = new FlowTagDispatcher({
        ...outbound,
        ...(endpoint === undefined || o.outbound.meter !== undefined ? {} : { meter: endpoint.meter }),
        ...this.routing,
        ...(o.signing === undefined && signTag !== undefined ? { signTag } : {})
      })
    } catch (err) {
      throw asServiceOption(err, 'outbound')
    }
    this.mirror = new ShadowMirror(o.service, this.dispatcher, o.shadow, (obj, msg) => log.warn(obj, msg), endpoint?.meter)
    if (o.mode === 'edge' && o.trust === undefined && o.shadow.comparer !== undefined) {
      log.warn({ service: o.service }, 'flowtag shadow: in edge mode this service trusts no incoming tag, so mirrored copies reaching it are not known as shadows and may write: set trust (cidrs of its peers) or signing')
    }
    this.fetch = async (input, init) => {
      try {
        return await undiciFetch(input, { ...init, dispatcher: this.dispatcher })
      } catch (err) {
        // undici wraps every failure in TypeError('fetch failed'); a routing failure (no instance,
        // all ejected, unknown service) is ours, coded, with its HTTP status (503): reject with
        // its code and status on top, so the app's error handler answers 503 with the code, not a
        // bare 500. `cause` stays the routing error, as it was under undici's TypeError.
        const routing = routingError(err)
        throw routing === undefined ? err : new FlowTagError(routing.code, routing.message, { cause: routing, statusCode: routing.statusCode })
      }
    }

    this.#ownRules = o.rules !== undefined && o.rules.kind !== 'store'
    if (o.rules?.kind === 'store') {
      store = o.rules.store
    } else if (o.rules?.kind === 'nacos') {
      const r = o.rules.options
      const cacheFile = r.cacheFile ?? this.#rulesCacheFile(r.dataId, r.group)
      store = createRuleStore({
        source: nacosSource({ config: this.nacos.config, dataId: r.dataId, group: r.group }),
        ...(cacheFile === undefined ? {} : { cacheFile }),
        startTimeoutMs: r.startTimeoutMs,
        logger: log
      })
    } else if (o.rules?.kind === 'document') {
      store = createRuleStore({ source: staticSource(o.rules.document), logger: log })
    }
    this.rules = store
    this.metrics = o.metrics === false ? undefined : new ServiceMetrics(o.service, o.version, () => view.compiled?.ruleSet.version, endpoint?.meter, { exclude: untracked(o) })

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
    return readiness({ ready: this.ready, registered: this.registration?.registered ?? false, draining: this.#draining })
  }

  /**
   * Before listening: with `registration.failFast`, check that Nacos answers; then wait for the
   * first RuleSet (at most `rules.startTimeoutMs`; it never rejects for want of rules).
   * @throws {FlowTagError} `FLOWTAG_SERVICE_CLOSED`; `FLOWTAG_NACOS_UNREACHABLE` with failFast.
   */
  async prepare (): Promise<void> {
    this.#assertOpen()
    await this.registration?.check()
    await this.rules?.ready
    if (this.cacheDir !== undefined) void this.#reportColdStart(this.cacheDir)
  }

  /**
   * `<cacheDir>/rules/<cluster>/<namespace>/<group>/<dataId>` (the folder made now; `<cluster>` as
   * in the Nacos client's snapshots), or undefined without a cacheDir.
   */
  #rulesCacheFile (dataId: string, group: string): string | undefined {
    if (this.cacheDir === undefined) return undefined
    const dir = join(this.cacheDir, 'rules', this.nacos.snapshotScope, safe(group))
    try {
      mkdirSync(dir, { recursive: true })
    } catch (err) {
      this.logger.warn({ err, dir }, 'flowtag service: cannot create the rules cache folder; rules are not kept on disk')
      return undefined
    }
    return join(dir, safe(dataId))
  }

  /** Said once at start when Nacos does not answer: what is served from disk, and how old it is. */
  async #reportColdStart (dir: string): Promise<void> {
    try {
      await this.nacos.ping()
      return
    } catch (err) {
      // Nacos answered but refused the credentials: say that, once, not "unreachable".
      if ((err as { code?: unknown }).code === 'FLOWTAG_NACOS_AUTH') {
        this.logger.error({ err }, `flowtag service: Nacos refused this service's credentials (${(err as { reason?: string }).reason ?? 'auth'}); registration and rule reads retry with back-off until they are fixed`)
        return
      }
      // unreachable: say what is served from disk below
    }
    if (this.#closed !== undefined) return
    const rulesFile = (this.rules as { cacheFile?: string } | undefined)?.cacheFile
    const rulesAt = rulesFile === undefined ? undefined : await mtime(rulesFile)
    const snapshots = this.nacos.snapshotDir
    const namingDir = snapshots === undefined ? '' : join(snapshots, 'naming')
    const files = snapshots === undefined ? [] : await readdir(namingDir).catch(() => [] as string[])
    let instancesAt: number | undefined
    for (const f of files) {
      const at = await mtime(join(namingDir, f))
      if (at !== undefined && (instancesAt === undefined || at > instancesAt)) instancesAt = at
    }
    const age = (at: number | undefined) => (at === undefined ? null : Math.max(0, Math.round((Date.now() - at) / 1000)))
    const snapshot = {
      rulesVersion: this.rules?.current?.version ?? null,
      rulesAgeS: age(rulesAt),
      instancesAgeS: age(instancesAt),
      services: files.length,
      cacheDir: dir
    }
    if (rulesAt === undefined && instancesAt === undefined) this.logger.warn({ snapshot }, 'flowtag service: Nacos unreachable at start and no disk snapshot; waiting for Nacos')
    else this.logger.warn({ snapshot }, `flowtag service: Nacos unreachable at start; serving from the disk snapshot (${ageText('rules', snapshot.rulesAgeS)}, ${ageText('instances', snapshot.instancesAgeS)})`)
  }

  /**
   * Once listening: register with the address listened on (`registration.ip`/`port` win).
   * @throws {FlowTagError} `FLOWTAG_SERVICE_CLOSED`; with failFast, the registration error.
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
      ['mirror', () => { this.mirror.close(); return undefined }],
      ['outbound', () => this.dispatcher.close()],
      ['rules', () => (this.#ownRules ? (this.rules as RuleStore).close() : undefined)],
      ['registration', () => this.registration?.close()],
      ['nacos', () => (this.#ownNacos ? this.nacos.close() : undefined)],
      ['metrics', () => this.#prometheus?.close()]
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
    if (this.#closed !== undefined) throw new FlowTagError(errorCodes.CLOSED, `@flowtag/service: "${this.name}" is closed`)
  }
}

/**
 * Compose a lane-aware service: the same as `new FlowTagService(options)`.
 *
 * @deprecated Use `new FlowTagService(options)`, the one constructor form of flowtag's entry
 * classes (as `new NacosClient(...)`, `new FlowTagDispatcher(...)`); removed in the next minor version.
 * @throws {FlowTagError} `FLOWTAG_SERVICE_BAD_OPTION` naming the field (`nacos.serverAddr`, `rules.dataId`, `mode`).
 */
export function createFlowTagService (options: FlowTagServiceOptions): FlowTagService {
  return new FlowTagService(options)
}

const safe = (s: string): string => encodeURIComponent(s)

/** Routes that are not lane traffic: the probes, the metrics route and the ones the user names. */
function untracked (o: ResolvedServiceOptions): string[] {
  const m = o.metrics === true ? { path: '/metrics' as const, excludeRoutes: [] } : o.metrics
  if (m === false) return []
  return [o.healthPath, o.readyPath, m.path, ...m.excludeRoutes].filter((r): r is string => r !== false)
}

/**
 * Per user and service, like the Java client's `~/nacos` cache and failover folders: private to
 * the user (a shared tmp folder would let another local user plant a snapshot), kept across
 * reboots (a cold start after a host restart still has it), and outside the working directory,
 * which is often read-only in containers or shared by unrelated apps.
 */
function defaultCacheDir (service: string): string {
  return join(homedir(), '.flowtag', 'cache', safe(service))
}

/** Create the folder now; a folder that cannot be made turns snapshots off with one warning. */
function prepareCacheDir (dir: string | undefined, log: ServiceLogger): string | undefined {
  if (dir === undefined) return undefined
  try {
    mkdirSync(dir, { recursive: true })
    return dir
  } catch (err) {
    log.warn({ err, cacheDir: dir }, 'flowtag service: cannot create the cache folder; no disk snapshots (a start while Nacos is down will have nothing)')
    return undefined
  }
}

/** `rules 12 s old`, or `no rules snapshot` when there is none. */
function ageText (what: string, ageS: number | null): string {
  return ageS === null ? `no ${what} snapshot` : `${what} ${ageS} s old`
}

async function mtime (file: string): Promise<number | undefined> {
  return stat(file).then((s) => s.mtimeMs, () => undefined)
}

function createClient (options: NacosClientOptions, log: ServiceLogger, app: PresetApp): NacosClient {
  const child = (log as { child?: (b: object) => ServiceLogger }).child
  // Credentials from NACOS_* where the options give none (a half pair names its variable), and the
  // gRPC connection labels (AppName = the service, version, env) Nacos 3.2+ can match gray config on.
  const full = presetClientOptions(options, app)
  try {
    // gRPC (pushes, connection-scoped instances) where the server offers it, HTTP otherwise: the client's default.
    return new NacosClient({ logger: typeof child === 'function' ? child.call(log, { module: 'nacos' }) : log, ...full })
  } catch (err) {
    throw asServiceOption(err, 'nacos')
  }
}
