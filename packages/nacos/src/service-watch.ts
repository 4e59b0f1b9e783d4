// Watched services: a cache per service fed by polling and pushes (UDP on v1, gRPC), with a disk
// snapshot for when Nacos is down. A server that restarted empty must not empty the callers'
// view, and a service whose last instance left must: a list going from some instances to none is
// held (empty protection) until empty-list.ts says the empty answer is the truth, and applied
// then; at once when this client deregistered those instances itself.
import type { ClientContext } from './context.ts'
import { diffInstances, instanceKey, type Instance, type ServiceListener } from './discovery.ts'
import { emptyListAppliesAt } from './empty-list.ts'
import { NacosError, errorCodes } from './errors.ts'
import { PushReceiver } from './push-receiver.ts'
import { externalIPv4, isLoopback } from './net-util.ts'
import { Ticker } from './ticker.ts'
import type { ServiceFile } from './snapshot.ts'
import { grouped, splitService, type PushTarget, type ServiceSnapshot } from './transport.ts'
import { parseServiceInfo } from './transport-v1.ts'

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
  /** When the first empty answer of the current run of them came (ms since epoch; 0: none). */
  emptySince: number
  /** Asks the server again when a held empty answer may apply. */
  emptyTimer: NodeJS.Timeout | undefined
  /** Until then (ms since epoch), instances missing from an answer are kept: the server answers again after an outage. */
  keepMissingUntil: number
  /** Missing instances are being kept (logged once per recovery). */
  keeping: boolean
  /** The first load (server, else snapshot) has finished. */
  ready: Promise<void>
  lastError: unknown
}

export class ServiceWatches {
  readonly #ctx: ClientContext
  readonly #watches = new Map<string, Watch>()
  readonly #preloaded: Promise<Map<string, ServiceFile>>
  #receiver: PushReceiver | undefined
  #push: Promise<PushTarget | undefined> | undefined
  /** Per watched service, instances this client deregistered and has not yet seen leave the list. */
  readonly #ownGone = new Map<string, Set<string>>()
  #emptyHeld = 0
  #missingKept = 0
  /** The last recovery after an outage or gRPC reconnect (ms since epoch). */
  #restartedAt = 0

  constructor (ctx: ClientContext) {
    this.#ctx = ctx
    this.#preloaded = ctx.options.loadCacheAtStart
      ? ctx.snapshots.loadAllServices().then((files) => new Map(files.map((f) => [f.name, f])))
      : Promise.resolve(new Map())
  }

  /** Empty answers (polls and pushes) held instead of applied, since the client started. */
  get emptyHeld (): number {
    return this.#emptyHeld
  }

  /** Answers after a recovery that lacked instances still held, kept instead of dropped (`namingRecoveryHoldMs`). */
  get missingKept (): number {
    return this.#missingKept
  }

  /** Watched services (`group@@service`) whose list is held against an empty answer. */
  stale (): string[] {
    return [...this.#watches.values()].filter((w) => w.stale).map((w) => w.name)
  }

  /** The instance is (again) this client's: its leaving would be news once more. */
  registered (name: string, key: string): void {
    this.#ownGone.get(name)?.delete(key)
  }

  /**
   * This client is about to deregister the instance: an empty list that follows is news, not a
   * server that lost state. Noted before the call (a push may beat its answer); returns the undo.
   */
  expectLeave (name: string, key: string): () => void {
    let gone = this.#ownGone.get(name)
    if (this.#watches.has(name)) {
      if (gone === undefined) this.#ownGone.set(name, (gone = new Set()))
      gone.add(key)
    }
    return () => gone?.delete(key)
  }

  async instances (service: string): Promise<Instance[]> {
    const w = this.#watch(service)
    await w.ready
    if (!w.known) await this.#load(w)
    if (!w.known) {
      if (w.lastError instanceof NacosError && w.lastError.code !== errorCodes.UNREACHABLE) throw w.lastError
      throw new NacosError(errorCodes.UNREACHABLE, `no instances known for ${w.name}: Nacos unreachable and no snapshot`, { cause: w.lastError })
    }
    return w.instances
  }

  subscribe (service: string, listener: ServiceListener): () => void {
    const w = this.#watch(service)
    w.listeners.add(listener)
    return () => {
      w.listeners.delete(listener)
    }
  }

  /**
   * Re-poll every watched service now (a server answers again after an outage). It may have
   * restarted empty: for a while its lists lack the instances that have not registered again
   * yet, so those are kept for `namingRecoveryHoldMs`.
   */
  recover (): void {
    this.holdMissing()
    for (const w of this.#watches.values()) w.ticker.kick()
  }

  /** Start the recovery hold of every watched service (a gRPC reconnect, before its redo). */
  holdMissing (): void {
    this.#restartedAt = Date.now()
    const holdMs = this.#ctx.options.namingRecoveryHoldMs
    if (holdMs === 0) return
    for (const w of this.#watches.values()) w.keepMissingUntil = Date.now() + holdMs
  }

  /**
   * A pushed ServiceInfo (UDP or gRPC); gRPC names the service bare, with its group apart, and
   * gives the set-up time of the connection it came on (`upSince`).
   */
  onPushInfo (raw: { name?: unknown; groupName?: unknown; hosts?: unknown; lastRefTime?: unknown }, upSince?: number): void {
    const rawName = String(raw.name ?? '')
    const name = rawName.includes('@@') ? rawName : grouped(String(raw.groupName ?? this.#ctx.options.group), rawName)
    const w = this.#watches.get(name)
    if (w === undefined) return
    const snap = parseServiceInfo(raw, w.service, w.group)
    this.#apply(w, upSince === undefined ? snap : { ...snap, upSince })
  }

  async close (): Promise<void> {
    for (const w of this.#watches.values()) {
      w.ticker.stop()
      clearTimeout(w.emptyTimer)
    }
    this.#watches.clear()
    await this.#receiver?.close()
  }

  #watch (service: string): Watch {
    const [group, bare] = splitService(service, this.#ctx.options.group)
    const name = grouped(group, bare)
    const existing = this.#watches.get(name)
    if (existing !== undefined) return existing
    if (this.#ctx.closing.aborted) throw new NacosError(errorCodes.CLOSED, 'the Nacos client is closed')
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
      emptySince: 0,
      emptyTimer: undefined,
      keepMissingUntil: 0,
      keeping: false,
      ready: Promise.resolve(),
      lastError: undefined
    }
    this.#watches.set(name, w)
    w.ready = this.#start(w)
    return w
  }

  async #start (w: Watch): Promise<void> {
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
  async #load (w: Watch): Promise<void> {
    try {
      await this.#refresh(w)
    } catch (err) {
      w.lastError = err
      if (w.known) return
      const file = await this.#ctx.snapshots.loadService(w.name)
      if (file !== undefined && !w.known) {
        this.#fromFile(w, file)
        this.#ctx.logger.warn({ service: w.name, err }, 'nacos unreachable, serving instances from snapshot')
      }
    }
  }

  #fromFile (w: Watch, file: ServiceFile): void {
    w.instances = file.instances
    w.lastRefTime = 0 // any server answer wins over a snapshot
    w.known = true
  }

  /** One poll of a watched service; resolves with the delay until the next. */
  async #poll (w: Watch): Promise<number> {
    try {
      await this.#refresh(w)
    } catch (err) {
      w.lastError = err
      if (!this.#ctx.closing.aborted) this.#ctx.logger.debug({ service: w.name, err }, 'nacos service poll failed')
    }
    return this.#ctx.options.namingPollIntervalMs
  }

  async #refresh (w: Watch): Promise<void> {
    const ns = this.#ctx.options.namespace
    // gRPC subscribes (pushes follow on the connection); v1 asks for UDP push with each list.
    const snap = await this.#ctx.pool.exec('list instances', async (t, r) =>
      t.watch !== undefined
        ? t.watch(r, ns, w.service, w.group)
        : t.list(r, ns, w.service, w.group, t.canPush && this.#ctx.options.udpPush ? await this.#pushTarget() : undefined)
    )
    this.#apply(w, snap)
  }

  #apply (w: Watch, snap: ServiceSnapshot): void {
    if (this.#watches.get(w.name) !== w) return
    // A poll answered before a newer push must not roll the list back.
    if (w.known && snap.lastRefTime < w.lastRefTime) return
    const emptied = snap.instances.length === 0 && w.instances.length > 0
    if (emptied && this.#ctx.options.namingProtectEmpty && !this.#sawLeave(w)) {
      const now = Date.now()
      if (w.emptySince === 0) w.emptySince = now
      const appliesAt = emptyListAppliesAt(
        { upSince: snap.upSince, emptySince: w.emptySince, troubleAt: Math.max(this.#restartedAt, this.#ctx.pool.troubleAt) },
        this.#ctx.options.namingRecoveryHoldMs
      )
      if (now < appliesAt) {
        this.#hold(w, appliesAt)
        return
      }
      this.#ctx.logger.info(
        { service: w.name, removed: w.instances.length, emptyForMs: now - w.emptySince },
        'nacos lists no instance of the service: its last instances left (empty list applied)'
      )
    }
    if (snap.instances.length > 0 || emptied) {
      w.emptySince = 0
      clearTimeout(w.emptyTimer)
    }
    if (w.keepMissingUntil !== 0) snap = this.#keepMissing(w, snap)
    if (w.stale) {
      w.stale = false
      if (snap.instances.length > 0) this.#ctx.logger.info({ service: w.name, instances: snap.instances.length }, 'nacos service list no longer held: the server lists instances again')
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
        this.#ctx.logger.error({ service: w.name, err }, 'nacos service listener threw')
      }
    }
  }

  /**
   * Within `namingRecoveryHoldMs` of a recovery, an answer lacking instances held now (and not
   * deregistered by this client) keeps them: a restarted server lists instances as they register
   * again, one by one, and a partial list routes a lane's traffic elsewhere or nowhere.
   */
  #keepMissing (w: Watch, snap: ServiceSnapshot): ServiceSnapshot {
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
  #sawLeave (w: Watch): boolean {
    const gone = this.#ownGone.get(w.name)
    return gone !== undefined && w.instances.every((i) => gone.has(instanceKey(i)))
  }

  /** Own deregistrations the server now reflects need no more remembering. */
  #forgetLeft (name: string, listed: Instance[]): void {
    const gone = this.#ownGone.get(name)
    if (gone === undefined) return
    const present = new Set(listed.map(instanceKey))
    for (const key of gone) if (!present.has(key)) gone.delete(key)
    if (gone.size === 0) this.#ownGone.delete(name)
  }

  // An empty answer after a non-empty list is also what a server restarted without its ephemeral
  // instances says in the seconds before they register again; routing on that fails every call.
  // Held until empty-list.ts says it is the truth; the service is asked again then.
  #hold (w: Watch, appliesAt: number): void {
    this.#emptyHeld++
    clearTimeout(w.emptyTimer)
    w.emptyTimer = setTimeout(() => { if (this.#watches.get(w.name) === w) w.ticker.kick() }, appliesAt - Date.now() + 10)
    w.emptyTimer.unref()
    if (w.stale) return
    w.stale = true
    this.#ctx.logger.warn(
      { service: w.name, held: w.instances.length, holdMs: appliesAt - Date.now() },
      'nacos answered an empty instance list; holding the last one (empty protection) until the server is known to have listed none for namingRecoveryHoldMs'
    )
  }

  /** Bind the UDP socket once; undefined (no push) if that fails. */
  #pushTarget (): Promise<PushTarget | undefined> {
    this.#push ??= (async () => {
      const loopback = this.#ctx.pool.servers.every((s) => isLoopback(s.host))
      const host = this.#ctx.options.udpHost ?? (loopback ? '127.0.0.1' : '0.0.0.0')
      const clientIp = this.#ctx.options.clientIp ?? (loopback ? '127.0.0.1' : externalIPv4())
      const receiver = new PushReceiver(host, this.#ctx.logger, (d) => this.onPushInfo(JSON.parse(d) as Record<string, unknown>), () => this.#dump())
      this.#receiver = receiver
      try {
        return { udpPort: await receiver.port(), clientIp }
      } catch (err) {
        this.#ctx.logger.warn({ err }, 'nacos udp push unavailable, polling only')
        return undefined
      }
    })()
    return this.#push
  }

  #dump (): string {
    const out: Record<string, unknown> = {}
    for (const w of this.#watches.values()) out[w.name] = { name: w.name, hosts: w.instances, lastRefTime: w.lastRefTime }
    return JSON.stringify(out)
  }
}
