// Naming: register/deregister/update with a beat loop per instance, and a watched cache of
// services fed by polling and (v1) UDP push, with a disk snapshot for when Nacos is down.
import { isIP } from 'node:net'
import { z } from 'zod'
import { errInfo, type ClientContext } from './context.ts'
import { diffInstances, type Discovery, type Instance, type ServiceListener } from './discovery.ts'
import { NacosError } from './errors.ts'
import { parseArgument } from './options.ts'
import { PushReceiver } from './push-receiver.ts'
import { externalIPv4, isLoopback } from './net-util.ts'
import { selectHealthy, selectOne } from './select.ts'
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
  timer: NodeJS.Timeout | undefined
  intervalMs: number
  light: boolean
  failures: number
  stopped: boolean
}

interface Watch {
  service: string
  group: string
  name: string
  instances: Instance[]
  lastRefTime: number
  known: boolean
  listeners: Set<ServiceListener>
  timer: NodeJS.Timeout | undefined
  /** The first load (server, else snapshot) has finished. */
  ready: Promise<void>
  lastError: unknown
}

const serviceName = z.string().min(1).max(512).refine((s) => !/\s/.test(s), 'no whitespace')

export class NamingClient implements Discovery {
  readonly #ctx: ClientContext
  readonly #registrations = new Map<string, Registration>()
  readonly #watches = new Map<string, Watch>()
  readonly #preloaded: Promise<Map<string, ServiceFile>>
  #receiver: PushReceiver | undefined
  #push: Promise<PushTarget | undefined> | undefined

  constructor(ctx: ClientContext) {
    this.#ctx = ctx
    this.#preloaded = ctx.options.loadCacheAtStart
      ? ctx.snapshots.loadAllServices().then((files) => new Map(files.map((f) => [f.name, f])))
      : Promise.resolve(new Map())
  }

  /** Register an instance and keep it alive with beats (ephemeral ones) until deregistered or closed. */
  async register(service: string, instance: InstanceInput): Promise<void> {
    const spec = this.#spec(service, instance)
    const key = regKey(spec)
    await this.#ctx.pool.exec('register instance', (t, r) => t.register(r, this.#ctx.options.namespace, spec))
    this.#stopBeat(key)
    if (!spec.ephemeral) return
    const configured = Number(spec.metadata['preserved.heart.beat.interval'])
    const reg: Registration = {
      spec,
      timer: undefined,
      intervalMs: configured > 0 ? configured : this.#ctx.options.beatIntervalMs,
      light: false,
      failures: 0,
      stopped: false
    }
    this.#registrations.set(key, reg)
    this.#scheduleBeat(reg, reg.intervalMs)
    this.#ctx.logger.info({ service: grouped(spec.group, spec.service), ip: spec.ip, port: spec.port }, 'nacos instance registered')
  }

  async deregister(service: string, instance: InstanceRef): Promise<void> {
    const spec = this.#spec(service, { ...instance, ip: instance.ip, port: instance.port })
    this.#stopBeat(regKey(spec))
    await this.#ctx.pool.exec('deregister instance', (t, r) => t.deregister(r, this.#ctx.options.namespace, spec))
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

  async close(): Promise<void> {
    for (const key of [...this.#registrations.keys()]) this.#stopBeat(key)
    for (const w of this.#watches.values()) clearTimeout(w.timer)
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
    clearTimeout(reg.timer)
    this.#registrations.delete(key)
  }

  #scheduleBeat(reg: Registration, delay: number): void {
    if (reg.stopped || this.#ctx.closing.aborted) return
    reg.timer = setTimeout(() => void this.#beat(reg), delay)
  }

  async #beat(reg: Registration): Promise<void> {
    const ns = this.#ctx.options.namespace
    let next = reg.intervalMs
    try {
      const res = await this.#ctx.pool.exec('beat', (t, r) => t.beat(r, ns, reg.spec, reg.light))
      if (reg.stopped) return
      if (res.intervalMs !== undefined) reg.intervalMs = res.intervalMs
      reg.light = res.lightBeatEnabled
      reg.failures = 0
      next = reg.intervalMs
      if (res.notFound) {
        // The server forgot us (restart, expiry, failover): register again.
        await this.#ctx.pool.exec('re-register instance', (t, r) => t.register(r, ns, reg.spec))
        this.#ctx.logger.info({ service: grouped(reg.spec.group, reg.spec.service), ip: reg.spec.ip, port: reg.spec.port }, 'nacos instance re-registered')
      }
    } catch (err) {
      if (reg.stopped || this.#ctx.closing.aborted) return
      reg.failures++
      reg.light = false
      // Back off while the cluster is unreachable, but never so long that the instance expires for good.
      next = Math.min(reg.intervalMs * 2 ** Math.min(reg.failures, 3), Math.max(reg.intervalMs, 15_000))
      this.#ctx.logger.warn({ err: errInfo(err), failures: reg.failures, retryInMs: next }, 'nacos beat failed')
    }
    this.#scheduleBeat(reg, next)
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
      timer: undefined,
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
      this.#schedulePoll(w, 0)
      return
    }
    await this.#load(w)
    this.#schedulePoll(w, this.#ctx.options.namingPollIntervalMs)
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

  #schedulePoll(w: Watch, delay: number): void {
    if (this.#ctx.closing.aborted || this.#watches.get(w.name) !== w) return
    w.timer = setTimeout(async () => {
      try {
        await this.#refresh(w)
      } catch (err) {
        w.lastError = err
        if (!this.#ctx.closing.aborted) this.#ctx.logger.debug({ service: w.name, err: errInfo(err) }, 'nacos service poll failed')
      }
      this.#schedulePoll(w, this.#ctx.options.namingPollIntervalMs)
    }, delay)
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
