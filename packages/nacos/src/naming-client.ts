// Naming: register/deregister/update with a beat loop per instance, and a watched cache of
// services fed by polling and (v1) UDP push, with a disk snapshot for when Nacos is down.
// A server that restarted empty must not empty the callers' view: a list going from some
// instances to none is held (empty protection) until the server knows instances again, and the
// first answer after an outage re-registers own instances and re-polls every watch at once.
import { isIP } from 'node:net'
import { z } from 'zod'
import { errInfo, type ClientContext } from './context.ts'
import { diffInstances, instanceKey, type Discovery, type Instance, type ServiceListener } from './discovery.ts'
import { NacosError } from './errors.ts'
import { parseArgument } from './options.ts'
import { PushReceiver } from './push-receiver.ts'
import { externalIPv4, isLoopback } from './net-util.ts'
import { selectHealthy, selectOne } from './select.ts'
import { Ticker } from './ticker.ts'
import type { ServiceFile } from './snapshot.ts'
import { grouped, splitService, type InstanceSpec, type PushTarget, type ServiceSnapshot } from './transport.ts'
import { parseServiceInfo } from './transport-v1.ts'

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
export type InstanceRef = Pick<InstanceInput, 'ip' | 'port' | 'clusterName' | 'group' | 'ephemeral'>

interface Registration {
  spec: InstanceSpec
  ticker: Ticker
  intervalMs: number
  light: boolean
  failures: number
  stopped: boolean
  /** Register (not beat) on the next run: the server answers again and may have lost us. */
  mustRegister: boolean
}

interface Watch {
  service: string
  group: string
  name: string
  instances: Instance[]
  lastRefTime: number
  known: boolean
  listeners: Set<ServiceListener>
  ticker: Ticker
  /** The list is held against an empty answer (empty protection). */
  stale: boolean
  /** Until then (ms since epoch), instances missing from an answer are kept: the server answers again after an outage. */
  keepMissingUntil: number
  /** Missing instances are being kept (logged once per recovery). */
  keeping: boolean
  /** The first load (server, else snapshot) has finished. */
  ready: Promise<void>
  lastError: unknown
}

export interface NamingStats {
  /** Watched services (`group@@service`) whose list is held against an empty answer. */
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

export class NamingClient implements Discovery {
  readonly #ctx: ClientContext
  readonly #registrations = new Map<string, Registration>()
  readonly #watches = new Map<string, Watch>()
  readonly #preloaded: Promise<Map<string, ServiceFile>>
  #receiver: PushReceiver | undefined
  #push: Promise<PushTarget | undefined> | undefined
  /** Per watched service, instances this client deregistered and has not yet seen leave the list. */
  readonly #ownGone = new Map<string, Set<string>>()
  readonly #offRecover: () => void
  #emptyHeld = 0
  #missingKept = 0
  #reregistered = 0

  constructor(ctx: ClientContext) {
    this.#ctx = ctx
    this.#preloaded = ctx.options.loadCacheAtStart
      ? ctx.snapshots.loadAllServices().then((files) => new Map(files.map((f) => [f.name, f])))
      : Promise.resolve(new Map())
    this.#offRecover = ctx.pool.onRecover(() => this.#recover())
  }

  /** Register an instance and keep it alive with beats (ephemeral ones) until deregistered or closed. */
  async register(service: string, instance: InstanceInput): Promise<void> {
    const spec = this.#spec(service, instance)
    const key = regKey(spec)
    await this.#ctx.pool.exec('register instance', (t, r) => t.register(r, this.#ctx.options.namespace, spec))
    this.#ownGone.get(grouped(spec.group, spec.service))?.delete(instanceKey(spec))
    this.#stopBeat(key)
    if (!spec.ephemeral) return
    const configured = Number(spec.metadata['preserved.heart.beat.interval'])
    const reg: Registration = {
      spec,
      ticker: new Ticker(() => this.#beat(reg)),
      intervalMs: configured > 0 ? configured : this.#ctx.options.beatIntervalMs,
      light: false,
      failures: 0,
      stopped: false,
      mustRegister: false
    }
    this.#registrations.set(key, reg)
    if (!this.#ctx.closing.aborted) reg.ticker.schedule(reg.intervalMs)
    this.#ctx.logger.info({ service: grouped(spec.group, spec.service), ip: spec.ip, port: spec.port }, 'nacos instance registered')
  }

  async deregister(service: string, instance: InstanceRef): Promise<void> {
    const spec = this.#spec(service, { ...instance, ip: instance.ip, port: instance.port })
    const reg = this.#registrations.get(regKey(spec))
    this.#stopBeat(regKey(spec))
    // A (re-)registration in flight must land before the deregistration, not after it.
    await reg?.ticker.idle()
    // Its leaving is expected (noted before the call: a push may beat its answer): an empty list
    // that follows is news, not a server that lost state.
    const name = grouped(spec.group, spec.service)
    const key = instanceKey(spec)
    let gone = this.#ownGone.get(name)
    if (this.#watches.has(name)) {
      if (gone === undefined) this.#ownGone.set(name, (gone = new Set()))
      gone.add(key)
    }
    try {
      await this.#ctx.pool.exec('deregister instance', (t, r) => t.deregister(r, this.#ctx.options.namespace, spec))
    } catch (err) {
      gone?.delete(key)
      throw err
    }
    this.#ctx.logger.info({ service: grouped(spec.group, spec.service), ip: spec.ip, port: spec.port }, 'nacos instance deregistered')
  }

  /** Change weight, enabled or metadata of a registered instance (beats carry the new values too). */
  async update(service: string, instance: InstanceInput): Promise<void> {
    const spec = this.#spec(service, instance)
    await this.#ctx.pool.exec('update instance', (t, r) => t.update(r, this.#ctx.options.namespace, spec))
    const reg = this.#registrations.get(regKey(spec))
    if (reg !== undefined) reg.spec = spec
  }

  /** Whether this client currently keeps the instance registered. */
  isRegistered(service: string, instance: Pick<InstanceRef, 'ip' | 'port' | 'clusterName' | 'group'>): boolean {
    return this.#registrations.has(regKey(this.#spec(service, instance)))
  }

  async instances(service: string): Promise<Instance[]> {
    const w = this.#watch(service)
    await w.ready
    if (!w.known) await this.#load(w)
    if (!w.known) {
      if (w.lastError instanceof NacosError && w.lastError.code !== 'FLOWTAG_NACOS_UNREACHABLE') throw w.lastError
      throw new NacosError('FLOWTAG_NACOS_UNREACHABLE', `no instances known for ${w.name}: Nacos unreachable and no snapshot`, { cause: w.lastError })
    }
    return w.instances
  }

  async selectHealthy(service: string): Promise<Instance[]> {
    return selectHealthy(await this.instances(service))
  }

  async selectOne(service: string): Promise<Instance | undefined> {
    return selectOne(selectHealthy(await this.instances(service)))
  }

  subscribe(service: string, listener: ServiceListener): () => void {
    if (typeof listener !== 'function') throw new NacosError('FLOWTAG_NACOS_BAD_ARGUMENT', 'invalid argument "listener": expected a function')
    const w = this.#watch(service)
    w.listeners.add(listener)
    return () => {
      w.listeners.delete(listener)
    }
  }

  /** Empty protection and recovery figures (for health pages, metrics and tests). */
  stats(): NamingStats {
    return {
      stale: [...this.#watches.values()].filter((w) => w.stale).map((w) => w.name),
      emptyHeld: this.#emptyHeld,
      reregistered: this.#reregistered,
      recoveries: this.#ctx.pool.recoveries,
      missingKept: this.#missingKept
    }
  }

  async close(): Promise<void> {
    this.#offRecover()
    for (const key of [...this.#registrations.keys()]) this.#stopBeat(key)
    for (const w of this.#watches.values()) w.ticker.stop()
    this.#watches.clear()
    await this.#receiver?.close()
  }

  #spec(service: string, instance: Partial<InstanceInput> & Pick<InstanceInput, 'ip' | 'port'>): InstanceSpec {
    parseArgument(serviceName, service, 'service')
    const i = parseArgument(instanceSchema, instance, 'instance')
    const [group, bare] = splitService(service, i.group ?? this.#ctx.options.group)
    return { ...i, service: bare, group }
  }

  // ---- beats ----

  #stopBeat(key: string): void {
    const reg = this.#registrations.get(key)
    if (reg === undefined) return
    reg.stopped = true
    reg.ticker.stop()
    this.#registrations.delete(key)
  }

  /** One beat (or registration); resolves with the delay until the next. */
  async #beat(reg: Registration): Promise<number> {
    const ns = this.#ctx.options.namespace
    try {
      if (reg.mustRegister) {
        await this.#reregister(reg, 'nacos answers again')
        reg.mustRegister = false
        reg.failures = 0
        return reg.intervalMs
      }
      const res = await this.#ctx.pool.exec('beat', (t, r) => t.beat(r, ns, reg.spec, reg.light))
      if (reg.stopped) return reg.intervalMs
      if (res.intervalMs !== undefined) reg.intervalMs = res.intervalMs
      reg.light = res.lightBeatEnabled
      reg.failures = 0
      // The server forgot us (restart, expiry, failover): register again.
      if (res.notFound) await this.#reregister(reg, 'the server no longer knew it')
      return reg.intervalMs
    } catch (err) {
      if (reg.stopped || this.#ctx.closing.aborted) return reg.intervalMs
      reg.failures++
      reg.light = false
      // Back off while the cluster is unreachable, but never so long that the instance expires for
      // good; the pool's recovery probe cuts the wait short when a server answers again.
      const next = Math.min(reg.intervalMs * 2 ** Math.min(reg.failures, 3), Math.max(reg.intervalMs, 15_000))
      this.#ctx.logger.warn({ err: errInfo(err), failures: reg.failures, retryInMs: next }, 'nacos beat failed')
      return next
    }
  }

  async #reregister(reg: Registration, why: string): Promise<void> {
    await this.#ctx.pool.exec('re-register instance', (t, r) => t.register(r, this.#ctx.options.namespace, reg.spec))
    this.#reregistered++
    this.#ctx.logger.info({ service: grouped(reg.spec.group, reg.spec.service), ip: reg.spec.ip, port: reg.spec.port, why }, 'nacos instance re-registered')
  }

  /**
   * A server answers after every server had failed: it may have restarted empty. Register own
   * instances again right away (back-offs reset) and re-poll every watched service.
   */
  #recover(): void {
    if (this.#ctx.closing.aborted) return
    for (const reg of this.#registrations.values()) {
      reg.mustRegister = true
      reg.failures = 0
      reg.light = false
      reg.ticker.kick()
    }
    // A server back after an outage may have restarted empty: for a while its lists lack the
    // instances that have not registered again yet. Keep those until they have had time to.
    const holdMs = this.#ctx.options.namingRecoveryHoldMs
    for (const w of this.#watches.values()) {
      if (holdMs > 0) w.keepMissingUntil = Date.now() + holdMs
      w.ticker.kick()
    }
  }

  // ---- watched services ----

  #watch(service: string): Watch {
    parseArgument(serviceName, service, 'service')
    const [group, bare] = splitService(service, this.#ctx.options.group)
    const name = grouped(group, bare)
    const existing = this.#watches.get(name)
    if (existing !== undefined) return existing
    if (this.#ctx.closing.aborted) throw new NacosError('FLOWTAG_NACOS_CLOSED', 'the Nacos client is closed')
    const w: Watch = {
      service: bare,
      group,
      name,
      instances: [],
      lastRefTime: 0,
      known: false,
      listeners: new Set(),
      ticker: new Ticker(() => this.#poll(w)),
      stale: false,
      keepMissingUntil: 0,
      keeping: false,
      ready: Promise.resolve(),
      lastError: undefined
    }
    this.#watches.set(name, w)
    w.ready = this.#start(w)
    return w
  }

  async #start(w: Watch): Promise<void> {
    const cached = (await this.#preloaded).get(w.name)
    if (cached !== undefined) {
      // Serve the snapshot at once; the server's answer follows in the background.
      this.#fromFile(w, cached)
      w.ticker.schedule(0)
      return
    }
    await this.#load(w)
    w.ticker.schedule(this.#ctx.options.namingPollIntervalMs)
  }

  /** One attempt at the server; on failure fall back to the disk snapshot if nothing is known yet. */
  async #load(w: Watch): Promise<void> {
    try {
      await this.#refresh(w)
    } catch (err) {
      w.lastError = err
      if (w.known) return
      const file = await this.#ctx.snapshots.loadService(w.name)
      if (file !== undefined && !w.known) {
        this.#fromFile(w, file)
        this.#ctx.logger.warn({ service: w.name, err: errInfo(err) }, 'nacos unreachable, serving instances from snapshot')
      }
    }
  }

  #fromFile(w: Watch, file: ServiceFile): void {
    w.instances = file.instances
    w.lastRefTime = 0 // any server answer wins over a snapshot
    w.known = true
  }

  /** One poll of a watched service; resolves with the delay until the next. */
  async #poll(w: Watch): Promise<number> {
    try {
      await this.#refresh(w)
    } catch (err) {
      w.lastError = err
      if (!this.#ctx.closing.aborted) this.#ctx.logger.debug({ service: w.name, err: errInfo(err) }, 'nacos service poll failed')
    }
    return this.#ctx.options.namingPollIntervalMs
  }

  async #refresh(w: Watch): Promise<void> {
    const ns = this.#ctx.options.namespace
    const snap = await this.#ctx.pool.exec('list instances', async (t, r) =>
      t.list(r, ns, w.service, w.group, t.canPush && this.#ctx.options.udpPush ? await this.#pushTarget() : undefined)
    )
    this.#apply(w, snap)
  }

  #apply(w: Watch, snap: ServiceSnapshot): void {
    if (this.#watches.get(w.name) !== w) return
    // A poll answered before a newer push must not roll the list back.
    if (w.known && snap.lastRefTime < w.lastRefTime) return
    if (snap.instances.length === 0 && w.instances.length > 0 && this.#ctx.options.namingProtectEmpty && !this.#sawLeave(w)) {
      this.#hold(w)
      return
    }
    if (w.keepMissingUntil !== 0) snap = this.#keepMissing(w, snap)
    if (w.stale) {
      w.stale = false
      this.#ctx.logger.info({ service: w.name, instances: snap.instances.length }, 'nacos service list no longer held: the server lists instances again')
    }
    this.#forgetLeft(w.name, snap.instances)
    const firstLoad = !w.known
    const change = diffInstances(w.service, w.instances, snap.instances)
    w.instances = snap.instances
    w.lastRefTime = snap.lastRefTime
    w.known = true
    const changed = change.added.length + change.removed.length + change.changed.length > 0
    if (changed || firstLoad) void this.#ctx.snapshots.saveService({ name: w.name, lastRefTime: snap.lastRefTime, instances: snap.instances })
    if (!changed) return
    for (const listener of w.listeners) {
      try {
        listener(change)
      } catch (err) {
        this.#ctx.logger.error({ service: w.name, err: errInfo(err) }, 'nacos service listener threw')
      }
    }
  }

  /**
   * Within `namingRecoveryHoldMs` of a recovery, an answer lacking instances held now (and not
   * deregistered by this client) keeps them: a restarted server lists instances as they register
   * again, one by one, and a partial list routes a lane's traffic elsewhere or nowhere.
   */
  #keepMissing(w: Watch, snap: ServiceSnapshot): ServiceSnapshot {
    if (Date.now() >= w.keepMissingUntil) {
      w.keepMissingUntil = 0
      if (w.keeping) {
        w.keeping = false
        this.#ctx.logger.info({ service: w.name, instances: snap.instances.length }, 'nacos recovery hold over: the server list applies in full again')
      }
      return snap
    }
    const listed = new Set(snap.instances.map(instanceKey))
    const gone = this.#ownGone.get(w.name)
    const missing = w.instances.filter((i) => !listed.has(instanceKey(i)) && gone?.has(instanceKey(i)) !== true)
    if (missing.length === 0) return snap
    this.#missingKept++
    if (!w.keeping) {
      w.keeping = true
      this.#ctx.logger.warn(
        { service: w.name, listed: snap.instances.length, kept: missing.length, holdMs: w.keepMissingUntil - Date.now() },
        'nacos answered again without some instances; keeping them until they had time to register again (recovery hold)'
      )
      // Poll once more right after the hold, so the list applies in full then, not a poll interval later.
      const timer = setTimeout(() => { if (this.#watches.get(w.name) === w) w.ticker.kick() }, w.keepMissingUntil - Date.now() + 10)
      timer.unref()
    }
    return { ...snap, instances: [...snap.instances, ...missing] }
  }

  /** Whether every instance held was deregistered by this client: then an empty list is news. */
  #sawLeave(w: Watch): boolean {
    const gone = this.#ownGone.get(w.name)
    return gone !== undefined && w.instances.every((i) => gone.has(instanceKey(i)))
  }

  /** Own deregistrations the server now reflects need no more remembering. */
  #forgetLeft(name: string, listed: Instance[]): void {
    const gone = this.#ownGone.get(name)
    if (gone === undefined) return
    const present = new Set(listed.map(instanceKey))
    for (const key of gone) if (!present.has(key)) gone.delete(key)
    if (gone.size === 0) this.#ownGone.delete(name)
  }

  // An empty answer after a non-empty list is what a server restarted without its ephemeral
  // instances says in the seconds before they register again; routing on it fails every call.
  #hold(w: Watch): void {
    this.#emptyHeld++
    if (w.stale) return
    w.stale = true
    this.#ctx.logger.warn(
      { service: w.name, held: w.instances.length },
      'nacos answered an empty instance list; holding the last one (empty protection) until it lists instances again'
    )
  }

  #onPush(data: string): void {
    const raw = JSON.parse(data) as { name?: unknown; groupName?: unknown }
    const rawName = String(raw.name ?? '')
    const name = rawName.includes('@@') ? rawName : grouped(String(raw.groupName ?? this.#ctx.options.group), rawName)
    const w = this.#watches.get(name)
    if (w === undefined) return
    this.#apply(w, parseServiceInfo(raw, w.service, w.group))
  }

  /** Bind the UDP socket once; undefined (no push) if that fails. */
  #pushTarget(): Promise<PushTarget | undefined> {
    this.#push ??= (async () => {
      const loopback = this.#ctx.pool.servers.every((s) => isLoopback(s.host))
      const host = this.#ctx.options.udpHost ?? (loopback ? '127.0.0.1' : '0.0.0.0')
      const clientIp = this.#ctx.options.clientIp ?? (loopback ? '127.0.0.1' : externalIPv4())
      const receiver = new PushReceiver(host, this.#ctx.logger, (d) => this.#onPush(d), () => this.#dump())
      this.#receiver = receiver
      try {
        return { udpPort: await receiver.port(), clientIp }
      } catch (err) {
        this.#ctx.logger.warn({ err: errInfo(err) }, 'nacos udp push unavailable, polling only')
        return undefined
      }
    })()
    return this.#push
  }

  #dump(): string {
    const out: Record<string, unknown> = {}
    for (const w of this.#watches.values()) out[w.name] = { name: w.name, hosts: w.instances, lastRefTime: w.lastRefTime }
    return JSON.stringify(out)
  }
}

function regKey(s: Pick<InstanceSpec, 'group' | 'service' | 'ip' | 'port' | 'clusterName'>): string {
  return `${s.group}@@${s.service}#${s.ip}#${s.port}#${s.clusterName}`
}
