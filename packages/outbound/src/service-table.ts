// One service's instances as routing sees them: members keyed by Nacos identity, grouped into
// lanes, each lane with an alias table over its pickable members. Tables are rebuilt only when
// the list changes or an instance is ejected or readmitted, so a pick stays O(1).
import { Client, Pool, type Dispatcher } from 'undici'
import { instanceKey, type Instance } from '@flowtag/nacos'
import { AliasTable } from './alias-table.ts'

export interface Attributes {
  service: string
  lane: string
  instance: string
  [key: string]: string
}

export interface Member {
  readonly key: string
  readonly origin: string
  instance: Instance
  lane: string
  /** Metric attributes, built once per list change (not per request). */
  attrs: Attributes
  pool: Pool | null
  consecutiveFailures: number
  timesEjected: number
  /** 0 when not ejected, else the time (ms, Date.now()) of readmission. */
  ejectedUntil: number
  lastEjectedAt: number
}

export interface Lane {
  readonly name: string
  /** All members labelled with this lane, pickable or not. */
  readonly members: Member[]
  /** Alias table over the pickable members; null when none is pickable. */
  table: AliasTable<Member> | null
  /** Members that would be pickable if they were not ejected. */
  ejected: number
}

export interface OutlierPolicy {
  consecutiveFailures: number
  baseEjectionMs: number
  maxEjectionMs: number
  maxEjectionPercent: number
  count5xx: boolean
}

export interface TableConfig {
  service: string
  labelKey: string
  protocol: string
  poolOptions: Pool.Options
  outlier: OutlierPolicy
}

/**
 * Untagged traffic split by lane weights, as one alias table over instances (lane share ×
 * instance share), so that pick is O(1) too. A string item is a share that cannot be served
 * (an empty lane under a strict route). Valid while `source`, `version`, `stable`, `strict` hold.
 */
export interface WeightedTable {
  source: Record<string, number>
  version: number
  stable: string
  strict: boolean
  table: AliasTable<Member | string> | null
}

export class ServiceTable {
  readonly service: string
  readonly members = new Map<string, Member>()
  lanes = new Map<string, Lane>()
  /** Pickable members across all lanes. */
  available = 0
  weighted: WeightedTable | null = null
  /** The last route computed for this service (see FlowtagDispatcher#routeFor). */
  route: { stable: string; strict: boolean; weights: Record<string, number> | undefined } | null = null
  /** Bumped on every rebuild: derived tables compare it to know they are stale. */
  version = 0
  /** Label value of the stable lane the unlabelled members were filed under. */
  #stableLane: string
  #config: TableConfig
  #timer: NodeJS.Timeout | null = null
  #closed = false
  /** One-request clients of stale-connection retries, until they finish. */
  readonly #fresh = new Set<Client>()
  /** Called when an instance is ejected or readmitted (for logs and tests). */
  onEjection: ((member: Member, ejected: boolean) => void) | null = null

  constructor(config: TableConfig, stableLane: string) {
    this.service = config.service
    this.#config = config
    this.#stableLane = stableLane
  }

  /** Replace the instance list: new members get no pool until first used, leaving members' pools close. */
  update(instances: readonly Instance[]): void {
    if (this.#closed) return
    const seen = new Set<string>()
    for (const instance of instances) {
      const key = instanceKey(instance)
      seen.add(key)
      const lane = laneOf(instance, this.#config.labelKey, this.#stableLane)
      const existing = this.members.get(key)
      if (existing !== undefined) {
        existing.instance = instance
        if (existing.lane !== lane) {
          existing.lane = lane
          existing.attrs = attributes(this.service, lane, existing.origin)
        }
        continue
      }
      const origin = `${this.#config.protocol}//${instance.ip.includes(':') ? `[${instance.ip}]` : instance.ip}:${instance.port}`
      this.members.set(key, {
        key,
        origin,
        instance,
        lane,
        attrs: attributes(this.service, lane, origin),
        pool: null,
        consecutiveFailures: 0,
        timesEjected: 0,
        ejectedUntil: 0,
        lastEjectedAt: 0
      })
    }
    for (const [key, member] of this.members) {
      if (seen.has(key)) continue
      this.members.delete(key)
      closePool(member)
    }
    this.rebuild()
  }

  /** The stable lane changed (RuleSet update): unlabelled members move with it. */
  setStableLane(stable: string): void {
    if (stable === this.#stableLane) return
    this.#stableLane = stable
    for (const m of this.members.values()) {
      const lane = laneOf(m.instance, this.#config.labelKey, stable)
      if (lane !== m.lane) {
        m.lane = lane
        m.attrs = attributes(this.service, lane, m.origin)
      }
    }
    this.rebuild()
  }

  get stableLane(): string {
    return this.#stableLane
  }

  rebuild(): void {
    const lanes = new Map<string, Lane>()
    let available = 0
    for (const m of this.members.values()) {
      let lane = lanes.get(m.lane)
      if (lane === undefined) lanes.set(m.lane, (lane = { name: m.lane, members: [], table: null, ejected: 0 }))
      lane.members.push(m)
    }
    for (const lane of lanes.values()) {
      const pickable: Member[] = []
      const weights: number[] = []
      for (const m of lane.members) {
        if (!eligible(m.instance)) continue
        if (m.ejectedUntil !== 0) {
          lane.ejected++
          continue
        }
        pickable.push(m)
        weights.push(m.instance.weight)
      }
      available += pickable.length
      lane.table = pickable.length === 0 ? null : new AliasTable(pickable, weights)
    }
    this.lanes = lanes
    this.available = available
    this.version++
  }

  poolFor(member: Member): Pool {
    if (member.pool === null) member.pool = new Pool(member.origin, this.#config.poolOptions)
    return member.pool
  }

  /**
   * Send one request to `member` over a new connection of its own, closed once the request is
   * done: the member's pool may hold more kept-alive connections the instance has given up on.
   */
  sendFresh(member: Member, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closed) return false
    const { connections: _one, ...options } = this.#config.poolOptions
    const client = new Client(member.origin, options)
    this.#fresh.add(client)
    client.dispatch(opts, handler)
    // Graceful: resolves after the request above has completed.
    client.close().then(
      () => this.#fresh.delete(client),
      () => this.#fresh.delete(client)
    )
    return true
  }

  get openPools(): number {
    let n = 0
    for (const m of this.members.values()) if (m.pool !== null) n++
    return n
  }

  recordSuccess(member: Member): void {
    member.consecutiveFailures = 0
  }

  /** An answer arrived: a success, unless 5xx answers count as failures. */
  recordResponse(member: Member, statusCode: number): void {
    if (statusCode >= 500 && this.#config.outlier.count5xx) this.recordFailure(member)
    else member.consecutiveFailures = 0
  }

  /** A connection-level failure: eject after N in a row, unless too much of the service is out already. */
  recordFailure(member: Member, now: number = Date.now()): void {
    if (member.ejectedUntil !== 0 || !this.members.has(member.key)) return
    const policy = this.#config.outlier
    if (++member.consecutiveFailures < policy.consecutiveFailures) return
    if (this.#ejectedCount() >= this.#maxEjected()) return
    // The multiplier starts over for an instance that has stayed in for a whole maxEjectionMs.
    if (member.lastEjectedAt !== 0 && now - member.lastEjectedAt > policy.maxEjectionMs + policy.baseEjectionMs * member.timesEjected) {
      member.timesEjected = 0
    }
    member.timesEjected++
    member.consecutiveFailures = 0
    member.lastEjectedAt = now
    member.ejectedUntil = now + Math.min(policy.baseEjectionMs * member.timesEjected, policy.maxEjectionMs)
    this.rebuild()
    this.#schedule(now)
    this.onEjection?.(member, true)
  }

  #ejectedCount(): number {
    let n = 0
    for (const m of this.members.values()) if (m.ejectedUntil !== 0) n++
    return n
  }

  #maxEjected(): number {
    const pct = this.#config.outlier.maxEjectionPercent
    if (pct === 0) return 0
    return Math.max(1, Math.floor((this.members.size * pct) / 100))
  }

  /** One timer per service, for the earliest readmission. */
  #schedule(now: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    let next = Infinity
    for (const m of this.members.values()) if (m.ejectedUntil !== 0 && m.ejectedUntil < next) next = m.ejectedUntil
    if (next === Infinity || this.#closed) return
    this.#timer = setTimeout(() => this.#readmit(), Math.max(0, next - now))
    this.#timer.unref()
  }

  #readmit(): void {
    this.#timer = null
    const now = Date.now()
    const back: Member[] = []
    for (const m of this.members.values()) {
      if (m.ejectedUntil !== 0 && m.ejectedUntil <= now) {
        m.ejectedUntil = 0
        m.consecutiveFailures = 0
        back.push(m)
      }
    }
    if (back.length > 0) this.rebuild()
    this.#schedule(now)
    for (const m of back) this.onEjection?.(m, false)
  }

  /** Close every pool gracefully (in-flight requests finish) and stop the readmission timer. */
  close(): Promise<void> {
    return this.#end((pool) => pool.close())
  }

  /** Destroy every pool at once: in-flight requests fail with `err`. */
  destroy(err: Error | null): Promise<void> {
    return this.#end((pool) => pool.destroy(err))
  }

  async #end(end: (d: Dispatcher) => Promise<void>): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const closing: Promise<void>[] = []
    for (const m of this.members.values()) {
      if (m.pool !== null) closing.push(end(m.pool).catch(() => {}))
      m.pool = null
    }
    for (const client of this.#fresh) closing.push(end(client).catch(() => {}))
    await Promise.all(closing)
  }
}

function eligible(i: Instance): boolean {
  return i.healthy && i.enabled && Number.isFinite(i.weight) && i.weight > 0
}

/** Unlabelled instances belong to the stable lane. */
function laneOf(i: Instance, labelKey: string, stable: string): string {
  const v = i.metadata[labelKey]
  return v === undefined || v === '' ? stable : v
}

function attributes(service: string, lane: string, origin: string): Attributes {
  return { service, lane, instance: origin.slice(origin.indexOf('//') + 2) }
}

function closePool(member: Member): void {
  const pool = member.pool
  member.pool = null
  // Graceful: requests already on this instance complete, then its sockets close.
  if (pool !== null) pool.close().catch(() => {})
}
