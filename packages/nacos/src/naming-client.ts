// Naming: register/deregister/update (own ephemeral instances kept alive by naming-beats.ts) and
// watched services (service-watch.ts: polling, pushes, snapshots, empty protection). The first
// answer after an outage re-registers own instances and re-polls every watch at once.
import { isIP } from 'node:net'
import { z } from 'zod'
import type { ClientContext } from './context.ts'
import { instanceKey, type NamingDiscovery, type Instance, type ServiceListener } from './discovery.ts'
import { NacosError, errorCodes } from './errors.ts'
import { BeatLoop, regKey } from './naming-beats.ts'
import { parseArgument } from './options.ts'
import { selectHealthy, selectOne } from './select.ts'
import { ServiceWatches } from './service-watch.ts'
import { grouped, splitService, type InstanceSpec } from './transport.ts'

const instanceSchema = z.strictObject({
  ip: z.string().refine((s) => isIP(s) !== 0, 'an IPv4 or IPv6 address'),
  port: z.number().int().min(1).max(65535),
  weight: z.number().min(0).max(10_000).default(1),
  enabled: z.boolean().default(true),
  healthy: z.boolean().default(true),
  ephemeral: z.boolean().default(true),
  clusterName: z.string().regex(/^[0-9a-zA-Z-_]+$/).max(64).default('DEFAULT'),
  metadata: z.record(z.string(), z.string()).default({}),
  group: z.string().regex(/^[a-zA-Z0-9\-_:.]+$/).max(128).optional()
})

export type InstanceInput = z.input<typeof instanceSchema>
/** An instance of a batch: its group is the batch's, and it is ephemeral. */
export type BatchInstanceInput = Omit<InstanceInput, 'group' | 'ephemeral'> & { ephemeral?: true }

const batchOptionsSchema = z.strictObject({ group: z.string().regex(/^[a-zA-Z0-9\-_:.]+$/).max(128).optional() })
export type BatchRegisterOptions = z.input<typeof batchOptionsSchema>
export type InstanceRef = Pick<InstanceInput, 'ip' | 'port' | 'clusterName' | 'group' | 'ephemeral'>

export interface NamingStats {
  /** Watched services (`group@@service`) whose list is held against an empty answer (until it proves true or instances come back). */
  stale: string[]
  /** Empty answers (polls and pushes) held instead of applied, since the client started. */
  emptyHeld: number
  /** Own instances registered again because the server had lost them or answered again after an outage. */
  reregistered: number
  /** Times a server answered again after every server had failed. */
  recoveries: number
  /** Answers after a recovery that lacked instances still held, kept instead of dropped (`namingRecoveryHoldMs`). */
  missingKept: number
}

const serviceName = z.string().min(1).max(512).refine((s) => !/\s/.test(s), 'no whitespace')

/**
 * Nacos naming (service discovery) of one `NacosClient` (`client.naming`; not constructed by
 * users): register, deregister and update instances (ephemeral ones kept alive with beats or the
 * gRPC connection, and registered again by themselves after a Nacos restart), read a service's
 * instances, and subscribe to its changes (gRPC push, or UDP push plus polling over HTTP). Lists
 * are cached: a Nacos outage serves the last list (and the snapshot on disk at start), and an
 * empty push is not believed while instances were known (`namingProtectEmpty`).
 * Implements `Discovery`, so it plugs into @flowtag/outbound and @flowtag/grpc as it is.
 * @throws {NacosError} `FLOWTAG_NACOS_BAD_ARGUMENT` for an invalid service or instance;
 *   `FLOWTAG_NACOS_UNREACHABLE`, `FLOWTAG_NACOS_AUTH`, `FLOWTAG_NACOS_HTTP` from the server
 */
export class NamingClient implements NamingDiscovery {
  readonly #ctx: ClientContext
  readonly #beats: BeatLoop
  readonly #watches: ServiceWatches
  readonly #offRecover: () => void
  readonly #offGrpcPush: () => void
  readonly #offGrpcReconnect: () => void

  constructor (ctx: ClientContext) {
    this.#ctx = ctx
    this.#beats = new BeatLoop(ctx)
    this.#watches = new ServiceWatches(ctx)
    this.#offRecover = ctx.pool.onRecover(() => this.#recover())
    this.#offGrpcPush = ctx.pool.grpc?.onServiceInfo((raw, upSince) => this.#watches.onPushInfo(raw, upSince)) ?? (() => {})
    // The redone subscriptions answer before the pool announces its recovery: hold from here.
    this.#offGrpcReconnect = ctx.pool.grpc?.onReconnect(() => this.#watches.holdMissing()) ?? (() => {})
  }

  /**
   * Register an instance and keep it alive with beats (ephemeral ones) until deregistered or
   * closed; re-registers by itself when the server has forgotten it.
   *
   * @param service the service name (no whitespace, at most 512 characters)
   * @param instance `{ ip, port, weight?, enabled?, healthy?, ephemeral?, clusterName?, metadata?, group? }`:
   *   `weight` 0..10000 @default 1; `enabled`, `healthy`, `ephemeral` @default true;
   *   `clusterName` @default 'DEFAULT'; `metadata` (strings; `version` is the lane) @default {};
   *   `group` @default the client's group. The beat interval is the server's answer, or
   *   `metadata['preserved.heart.beat.interval']` (ms), or the client's `beatIntervalMs`.
   * @throws {NacosError} `FLOWTAG_NACOS_BAD_ARGUMENT` for an invalid instance;
   *   `FLOWTAG_NACOS_UNREACHABLE`, `FLOWTAG_NACOS_HTTP`, `FLOWTAG_NACOS_AUTH` from the server
   */
  async register (service: string, instance: InstanceInput): Promise<void> {
    const spec = this.#spec(service, instance)
    await this.#ctx.pool.exec('register instance', (t, r) => t.register(r, this.#ctx.options.namespace, spec))
    this.#watches.registered(grouped(spec.group, spec.service), instanceKey(spec))
    void this.#beats.stop(regKey(spec))
    if (!spec.ephemeral) return
    this.#beats.start(spec)
    this.#ctx.logger.info({ service: grouped(spec.group, spec.service), ip: spec.ip, port: spec.port }, 'nacos instance registered')
  }

  /**
   * Make `instances` this client's ephemeral instances of `service`, at once: over gRPC one
   * `BatchInstanceRequest` (what Nacos lists for this client's connection becomes exactly this
   * list; redone as one batch after a reconnect). Instances of the service this client registered
   * before and that the list leaves out are deregistered; an empty list deregisters them all.
   * Over HTTP (v1, v3), where Nacos has no batch for ephemeral instances, the instances are
   * registered one by one (each then beats on its own) and the left-out ones deregistered: the
   * same end state, not atomic (a watcher may see it arrive in steps).
   *
   * @param service the service name (`group@@service` allowed)
   * @param instances `[{ ip, port, weight?, enabled?, healthy?, clusterName?, metadata? }]` as for
   *   `register`; all ephemeral (no `ephemeral: false`), no per-instance `group`; the same
   *   `ip:port:cluster` twice counts once (the last one)
   * @param options `{ group? }` @default the client's group
   * @throws {NacosError} `FLOWTAG_NACOS_BAD_ARGUMENT` for an invalid or persistent instance or a bad
   *   group; `FLOWTAG_NACOS_UNREACHABLE`, `FLOWTAG_NACOS_HTTP`, `FLOWTAG_NACOS_AUTH` from the server
   */
  async batchRegister (service: string, instances: BatchInstanceInput[], options: BatchRegisterOptions = {}): Promise<void> {
    const opts = parseArgument(batchOptionsSchema, options, 'options')
    if (!Array.isArray(instances)) throw new NacosError(errorCodes.BAD_ARGUMENT, '@flowtag/nacos: invalid argument "instances": expected an array')
    const byKey = new Map<string, InstanceSpec>()
    for (const instance of instances) {
      const i = instance as InstanceInput
      if (i.ephemeral === false) throw new NacosError(errorCodes.BAD_ARGUMENT, '@flowtag/nacos: invalid argument "instances": a batch registers ephemeral instances only')
      if (i.group !== undefined) throw new NacosError(errorCodes.BAD_ARGUMENT, '@flowtag/nacos: invalid argument "instances": the group is the batch\'s (options.group), not an instance\'s')
      const spec = this.#spec(service, { ...i, ...(opts.group === undefined ? {} : { group: opts.group }) })
      byKey.set(regKey(spec), spec)
    }
    const [group, bare] = splitService(service, opts.group ?? this.#ctx.options.group)
    const name = grouped(group, bare)
    const specs = [...byKey.values()]
    const previous = this.#beats.specsOf(name)
    const dropped = previous.filter((s) => !byKey.has(regKey(s)))
    // Registrations in flight land before the batch, not after it.
    for (const s of [...dropped, ...specs]) await this.#beats.stop(regKey(s))
    const undo = dropped.map((s) => this.#watches.expectLeave(name, instanceKey(s)))
    const ns = this.#ctx.options.namespace
    try {
      await this.#ctx.pool.exec('batch register instances', async (t, r) => {
        if (t.batchRegister !== undefined) return t.batchRegister(r, ns, group, bare, specs)
        for (const s of specs) await t.register(r, ns, s)
        for (const s of dropped) await t.deregister(r, ns, s)
      })
    } catch (err) {
      for (const u of undo) u()
      // What the server holds is unknown: the instances held before beat again (and re-register if lost).
      for (const s of previous) this.#beats.start(s)
      throw err
    }
    for (const s of specs) {
      this.#watches.registered(name, instanceKey(s))
      this.#beats.start(s)
    }
    this.#ctx.logger.info({ service: name, instances: specs.map((s) => `${s.ip}:${s.port}`), deregistered: dropped.length }, 'nacos instances batch registered')
  }

  async deregister (service: string, instance: InstanceRef): Promise<void> {
    const spec = this.#spec(service, { ...instance, ip: instance.ip, port: instance.port })
    // A (re-)registration in flight must land before the deregistration, not after it.
    await this.#beats.stop(regKey(spec))
    const undo = this.#watches.expectLeave(grouped(spec.group, spec.service), instanceKey(spec))
    try {
      await this.#ctx.pool.exec('deregister instance', (t, r) => t.deregister(r, this.#ctx.options.namespace, spec))
    } catch (err) {
      undo()
      throw err
    }
    this.#ctx.logger.info({ service: grouped(spec.group, spec.service), ip: spec.ip, port: spec.port }, 'nacos instance deregistered')
  }

  /** Change weight, enabled or metadata of a registered instance (beats carry the new values too). */
  async update (service: string, instance: InstanceInput): Promise<void> {
    const spec = this.#spec(service, instance)
    await this.#ctx.pool.exec('update instance', (t, r) => t.update(r, this.#ctx.options.namespace, spec))
    this.#beats.update(spec)
  }

  /** Whether this client currently keeps the instance registered. */
  isRegistered (service: string, instance: Pick<InstanceRef, 'ip' | 'port' | 'clusterName' | 'group'>): boolean {
    return this.#beats.has(regKey(this.#spec(service, instance)))
  }

  /**
   * The service's instances from the local cache (all of them, healthy or not: filter with
   * `selectHealthy`). The first call loads the list and starts watching the service (UDP push
   * where the server offers it, else polling every `namingPollIntervalMs`); later calls cost no
   * request. With a `cacheDir` snapshot, served from it while Nacos is unreachable.
   *
   * @throws {NacosError} `FLOWTAG_NACOS_UNREACHABLE` when no server answers and no snapshot is
   *   known; `FLOWTAG_NACOS_BAD_ARGUMENT` for an invalid name; the server's error otherwise
   */
  async instances (service: string): Promise<Instance[]> {
    parseArgument(serviceName, service, 'service')
    return this.#watches.instances(service)
  }

  async selectHealthy (service: string): Promise<Instance[]> {
    return selectHealthy(await this.instances(service))
  }

  async selectOne (service: string): Promise<Instance | undefined> {
    return selectOne(selectHealthy(await this.instances(service)))
  }

  /**
   * Call `listener({ service, instances, added, removed, changed })` on every change of the
   * service's list (starts watching it, as `instances` does). Under `namingProtectEmpty` an empty
   * answer after a non-empty list is held back until the server is known to have listed none for
   * `namingRecoveryHoldMs` without a restart or failure (at once over a gRPC connection older
   * than that; over HTTP after the hold), or at once when this client deregistered the instances.
   *
   * @returns the unsubscribe function
   * @throws {NacosError} `FLOWTAG_NACOS_BAD_ARGUMENT` when `listener` is not a function or the name is invalid
   */
  subscribe (service: string, listener: ServiceListener): () => void {
    if (typeof listener !== 'function') throw new NacosError(errorCodes.BAD_ARGUMENT, 'invalid argument "listener": expected a function')
    parseArgument(serviceName, service, 'service')
    return this.#watches.subscribe(service, listener)
  }

  /** Empty protection and recovery figures (for health pages, metrics and tests). */
  stats (): NamingStats {
    return {
      stale: this.#watches.stale(),
      emptyHeld: this.#watches.emptyHeld,
      reregistered: this.#beats.reregistered,
      recoveries: this.#ctx.pool.recoveries,
      missingKept: this.#watches.missingKept
    }
  }

  async close (): Promise<void> {
    this.#offRecover()
    this.#offGrpcPush()
    this.#offGrpcReconnect()
    this.#beats.close()
    await this.#watches.close()
  }

  #spec (service: string, instance: Partial<InstanceInput> & Pick<InstanceInput, 'ip' | 'port'>): InstanceSpec {
    parseArgument(serviceName, service, 'service')
    const i = parseArgument(instanceSchema, instance, 'instance')
    const [group, bare] = splitService(service, i.group ?? this.#ctx.options.group)
    return { ...i, service: bare, group }
  }

  /** A server answers after every server had failed: it may have restarted empty. */
  #recover (): void {
    if (this.#ctx.closing.aborted) return
    this.#beats.recover()
    this.#watches.recover()
  }
}
