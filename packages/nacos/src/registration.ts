// The registration lifecycle of one service instance, framework-free: register once the server
// listens (retrying in the background), report readiness, and on shutdown deregister, then drain.
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import type { NacosClient } from './client.ts'
import { badOption } from './errors.ts'
import { silentLogger, type Logger } from './logger.ts'
import type { InstanceInput } from './naming-client.ts'
import { externalIPv4 } from './net-util.ts'
import { parseOptions } from './options.ts'

const MAX_RETRY_MS = 30_000

/**
 * Metadata key of the moment the instance started listening (epoch ms), from which callers warm
 * it up (@flowtag/outbound's STARTED_AT_METADATA); a value in the options' metadata wins.
 */
export const STARTED_AT_METADATA = 'flowtag.startedAt'

const isLogger = (v: unknown): v is Logger =>
  typeof v === 'object' && v !== null && ['debug', 'info', 'warn', 'error'].every((k) => typeof (v as Record<string, unknown>)[k] === 'function')

export const registrationOptionsSchema = z.strictObject({
  /** Service name (`group@@name` allowed). */
  service: z.string().min(1).max(512),
  group: z.string().optional(),
  /** Advertised address; default: the address listened on (an external IPv4 for 0.0.0.0/::). */
  ip: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  weight: z.number().min(0).max(10_000).default(1),
  clusterName: z.string().optional(),
  metadata: z.record(z.string(), z.string()).default({}),
  /** Shorthands for metadata.version / metadata.env. */
  version: z.string().min(1).optional(),
  env: z.string().min(1).optional(),
  /** How long to keep serving after deregistering, so callers drop this instance. */
  drainMs: z.number().int().min(0).max(600_000).default(0),
  /** Refuse to start when Nacos is unreachable, instead of registering in the background. */
  failFast: z.boolean().default(false),
  /** First retry delay of background registration (doubles up to 30 s). */
  retryMs: z.number().int().positive().default(1000),
  logger: z.custom<Logger>(isLogger, 'expected an object with debug/info/warn/error functions').default(silentLogger)
})

/** Options of {@link NacosRegistration} (and of the Fastify plugin, which adds its own). */
export type NacosRegistrationOptions = z.input<typeof registrationOptionsSchema>

/** What a `/ready` probe answers: 200 with `{ status: 'ready' }`, else 503 with the reasons. */
export interface Readiness {
  ready: boolean
  body: { status: 'ready' } | { status: 'not ready', registered: boolean, draining: boolean }
}

/**
 * The `/ready` answer of a registration (or of what owns one: @flowtag/service's FlowTagService),
 * the one logic behind every adapter's probe; the status code (200 or 503) is the adapter's to send.
 */
export function readiness (state: { readonly ready: boolean, readonly registered: boolean, readonly draining: boolean }): Readiness {
  if (state.ready) return { ready: true, body: { status: 'ready' } }
  return { ready: false, body: { status: 'not ready', registered: state.registered, draining: state.draining } }
}

/** Where the server listens: `server.address()` of a TCP server fits. */
export interface ListenAddress {
  /** The host listened on; a wildcard (`0.0.0.0`, `::`) or none advertises an external IPv4. */
  address?: string
  port: number
}

/**
 * One service instance's life in Nacos. The constructor opens nothing.
 *
 * - `start(server.address())` once the server listens: registers (in the background with
 *   retries doubling from `retryMs` to 30 s, or at once and throwing with `failFast`).
 * - `ready` is true while registered and not draining (a `/ready` probe's answer).
 * - `drain()` on shutdown: stop registering, deregister, wait `drainMs` while still serving.
 * - `close()` stops everything (deregisters if `drain()` was not called); the client stays open.
 *
 * ```ts
 * const registration = new NacosRegistration(client, { service: 'orders', version: 'v2', drainMs: 2000 })
 * server.listen(3000, () => registration.start(server.address() as AddressInfo))
 * ```
 * @throws {NacosError} `FLOWTAG_NACOS_BAD_OPTION` naming the bad field.
 */
export class NacosRegistration {
  readonly service: string
  readonly #client: NacosClient
  readonly #o: z.output<typeof registrationOptionsSchema>
  readonly #log: Logger
  readonly #stopping = new AbortController()
  #instance: InstanceInput | undefined
  // metadata set after construction (updateMetadata), merged over the options' at start
  #extraMetadata: Record<string, string> = {}
  #updating: Promise<void> = Promise.resolve()
  #registered = false
  #draining = false
  #registering: Promise<void> | undefined
  #drained: Promise<void> | undefined
  #closed: Promise<void> | undefined

  constructor (client: NacosClient, options: NacosRegistrationOptions) {
    this.#client = client
    this.#o = parseOptions(registrationOptionsSchema, options)
    this.#log = this.#o.logger
    this.service = this.#o.service
  }

  /** Registered in Nacos and not draining. */
  get ready (): boolean {
    return this.#registered && !this.#draining
  }

  get registered (): boolean {
    return this.#registered
  }

  get draining (): boolean {
    return this.#draining
  }

  /** The instance as registered (address, weight, metadata), once `start()` was called. */
  get instance (): Readonly<InstanceInput> | undefined {
    return this.#instance
  }

  /**
   * With `failFast`, check that Nacos answers (call it before listening); otherwise a no-op.
   * @throws {NacosError} `FLOWTAG_NACOS_UNREACHABLE`
   */
  async check (): Promise<void> {
    if (this.#o.failFast) await this.#client.ping()
  }

  /**
   * Register with the address listened on (`ip`/`port` options win). Resolves at once and keeps
   * trying in the background, or, with `failFast`, once registered.
   * @throws {NacosError} `FLOWTAG_NACOS_BAD_OPTION` when there is no port; with `failFast`, the registration error.
   */
  async start (listening: ListenAddress | undefined): Promise<void> {
    if (this.#registering !== undefined) return this.#registering
    const o = this.#o
    // Set when the server listens: a re-registration (Nacos forgot us) keeps it, a restart gets a new one.
    const metadata: Record<string, string> = { [STARTED_AT_METADATA]: String(Date.now()), ...o.metadata, ...this.#extraMetadata }
    if (o.version !== undefined) metadata.version = o.version
    if (o.env !== undefined) metadata.env = o.env
    const instance: InstanceInput = {
      ...advertised(listening, o.ip, o.port),
      weight: o.weight,
      metadata,
      ...(o.clusterName === undefined ? {} : { clusterName: o.clusterName }),
      ...(o.group === undefined ? {} : { group: o.group })
    }
    this.#instance = instance
    if (o.failFast) {
      this.#registering = this.#registerOnce(instance)
      return this.#registering
    }
    this.#registering = this.#keepRegistering(instance)
  }

  /**
   * Merge `metadata` into the instance's metadata (for example the rule version it applies). Before
   * `start()` it is kept for the registration; once registered, the instance is registered again
   * with the new metadata (Nacos replaces it). Updates are applied in call order; a failed
   * re-registration is logged and the next update or beat-driven re-registration carries it.
   */
  updateMetadata (metadata: Record<string, string>): Promise<void> {
    Object.assign(this.#extraMetadata, metadata)
    const instance = this.#instance
    if (instance === undefined) return Promise.resolve()
    this.#instance = { ...instance, metadata: { ...instance.metadata, ...metadata } }
    this.#updating = this.#updating.then(async () => {
      const current = this.#instance
      if (!this.#registered || this.#draining || current === undefined) return
      try {
        await this.#client.naming.register(this.service, current)
      } catch (err) {
        this.#log.warn({ err, service: this.service }, 'nacos metadata update failed')
      }
    })
    return this.#updating
  }

  /** Stop registering, deregister, report not ready, then wait `drainMs`. Idempotent. */
  drain (): Promise<void> {
    this.#drained ??= this.#drain(true)
    return this.#drained
  }

  /** Stop background work and deregister if still registered (without the drain wait). Idempotent. */
  close (): Promise<void> {
    this.#closed ??= (this.#drained ?? this.#drain(false)).then(() => {}, () => {})
    return this.#closed
  }

  async #registerOnce (first: InstanceInput): Promise<void> {
    const instance = this.#instance ?? first
    await this.#client.naming.register(this.service, instance)
    if (this.#draining) return
    this.#registered = true
    this.#log.info({ service: this.service, ip: instance.ip, port: instance.port }, 'registered in nacos')
  }

  async #keepRegistering (instance: InstanceInput): Promise<void> {
    let delay = this.#o.retryMs
    const signal = this.#stopping.signal
    while (!signal.aborted && !this.#draining) {
      try {
        await this.#registerOnce(instance)
        return
      } catch (err) {
        if (signal.aborted || this.#draining) return
        this.#log.warn({ err, service: this.service, retryInMs: delay }, 'nacos registration failed, retrying')
        // A server answering again ends the wait: a process started during an outage registers
        // within a probe of Nacos coming back, not at the end of a back-off of up to 30 s.
        const recovered = new AbortController()
        const off = this.#client.onRecover(() => recovered.abort())
        await sleep(delay, undefined, { signal: AbortSignal.any([signal, recovered.signal]) }).catch(() => {})
        off()
        delay = recovered.signal.aborted ? this.#o.retryMs : Math.min(delay * 2, MAX_RETRY_MS)
      }
    }
  }

  async #drain (wait: boolean): Promise<void> {
    this.#draining = true
    this.#stopping.abort()
    await this.#registering?.catch(() => {})
    await this.#updating
    const instance = this.#instance
    if (instance !== undefined && this.#client.naming.isRegistered(this.service, instance)) {
      try {
        await this.#client.naming.deregister(this.service, instance)
        this.#log.info({ service: this.service, ip: instance.ip, port: instance.port, drainMs: this.#o.drainMs }, 'deregistered from nacos')
      } catch (err) {
        this.#log.warn({ err, service: this.service }, 'nacos deregistration failed')
      }
    }
    this.#registered = false
    if (wait && this.#o.drainMs > 0) await sleep(this.#o.drainMs)
  }
}

function advertised (listening: ListenAddress | undefined, ip: string | undefined, port: number | undefined): { ip: string; port: number } {
  const host = listening?.address
  const wildcard = host === undefined || host === '0.0.0.0' || host === '::'
  const resolvedPort = port ?? listening?.port
  if (resolvedPort === undefined) throw badOption('port', 'not listening on a TCP port; set port')
  return { ip: ip ?? (wildcard ? externalIPv4() : host), port: resolvedPort }
}
