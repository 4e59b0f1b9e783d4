// One service's instances as the HTTP dispatcher sees them: members keyed by instance identity,
// each with its pool (an undici Pool, or what the factory option makes; opened on first use),
// indexed into lanes by a LaneIndex that is rebuilt only when the list changes or an instance
// is ejected or readmitted, and every second or so while an instance warms up.
import type { Dispatcher } from 'undici'
import { eligible, instanceKey, laneOf, takesCalls, type Instance, type ServiceChange } from './discovery.ts'
import { LaneIndex, resolveRoute, type LaneConfig, type Lane, type MemberInfo, type Route } from './lanes.ts'
import type { InstancePool, InstancePoolOptions, PoolFactory } from './instance-pool.ts'
import { freshOutlierState, OutlierDetector, type OutlierPolicy, type OutlierState } from './outlier.ts'
import { RetryBudgets, type RetryBudget, type RetryBudgetPolicy } from './retry-budget.ts'
import { followWarmupState, freshWarmupState, warmupRefreshMs, type WarmupPolicy, type WarmupState } from './warmup.ts'

export interface Attributes {
  service: string
  lane: string
  instance: string
  [key: string]: string
}

export interface Member extends OutlierState, WarmupState {
  readonly key: string
  readonly origin: string
  instance: Instance
  lane: string
  /** Metric attributes, built once per list change (not per request). */
  attrs: Attributes
  pool: InstancePool | null
  /** The retry budget of the member's lane; null when budgets are off. */
  budget: RetryBudget | null
}

export type { OutlierPolicy, RetryBudgetPolicy, WarmupPolicy }

/** What changed since the list a table applied last (the optional sets of a ServiceChange). */
export type ListChange = Pick<ServiceChange, 'added' | 'removed' | 'changed'>

/** A change set of up to this many instances is applied as such whatever the list's size. */
const SMALL_CHANGE = 16

export interface TableConfig {
  service: string
  labelKey: string
  protocol: string
  poolOptions: InstancePoolOptions
  /** Creates each member's pool (and the one-connection dispatcher of a stale-connection retry). */
  factory: PoolFactory
  outlier: OutlierPolicy
  /** Warm-up of new instances (false: off). */
  warmup: WarmupPolicy | false
  /** Retry budget per lane (false: off). */
  retryBudget: RetryBudgetPolicy | false
  /** Called after an instance is ejected (`ejected`, until `untilMs`) or readmitted. */
  onEjection?: (member: Member, ejected: boolean, untilMs: number) => void
}

export class ServiceTable {
  readonly service: string
  readonly members = new Map<string, Member>()
  #index: LaneIndex<Member>
  /** The last route computed for this service, reused while unchanged (see routeFor). */
  #route: Route | null = null
  /** Label value of the stable lane the unlabelled members were filed under. */
  #stableLane: string
  readonly #config: TableConfig
  readonly #outlier: OutlierDetector<Member>
  #closed = false
  /** One-connection dispatchers of stale-connection retries, until they finish. */
  readonly #fresh = new Set<InstancePool>()
  readonly #budgets: RetryBudgets | null
  /** The first list has been applied: members listed later were seen arriving (they warm up from then). */
  #listed = false
  /** Rebuilds the index while some member warms up. */
  #warmTimer: NodeJS.Timeout | null = null
  /** Listed instances that take no calls (consumer-only), by key: the rest of the list. */
  readonly #others = new Map<string, Instance>()
  #incremental = 0

  constructor (config: TableConfig, stableLane: string) {
    this.service = config.service
    this.#config = config
    this.#stableLane = stableLane
    this.#budgets = config.retryBudget === false ? null : new RetryBudgets(config.retryBudget)
    this.#index = new LaneIndex(config.service, [], info)
    this.#outlier = new OutlierDetector(config.outlier, {
      members: () => this.members.values(),
      has: (m) => this.members.get(m.key) === m,
      changed: () => this.rebuild(),
      onEjection: (m, ejected, until) => config.onEjection?.(m, ejected, until)
    })
  }

  /** The current lanes; replaced (never mutated) on every change. */
  get index (): LaneIndex<Member> {
    return this.#index
  }

  get lanes (): ReadonlyMap<string, Lane<Member>> {
    return this.#index.lanes
  }

  /** Pickable members across all lanes. */
  get available (): number {
    return this.#index.available
  }

  /**
   * Apply a new instance list: new members get no pool until first used, leaving members' pools
   * close. Consumer-only instances are left out. `change` (what changed since the list applied
   * last, see ServiceChange) makes a small change cost O(changed): only the members it names are
   * touched and only the lanes it moves, reweighs or empties are rebuilt (with every lane that
   * warms). Without it, with a large change or with sets that do not add up to `listed`, the
   * whole list is applied and every lane rebuilt.
   */
  update (listed: readonly Instance[], change?: ListChange): void {
    if (this.#closed) return
    if (change !== undefined && this.#listed && this.#applyChange(listed, change)) {
      this.#incremental++
      return
    }
    this.#replace(listed)
  }

  /** Updates applied as a change set (not as a whole list) since the table was made. */
  get incrementalUpdates (): number {
    return this.#incremental
  }

  #replace (listed: readonly Instance[]): void {
    const seen = new Set<string>()
    const now = Date.now()
    // A member listed after the first list arrived while we watched: it warms up from now at the earliest.
    const arriving = this.#listed
    this.#listed = true
    this.#others.clear()
    for (const instance of listed) {
      const key = instanceKey(instance)
      if (!takesCalls(instance)) {
        this.#others.set(key, instance)
        continue
      }
      seen.add(key)
      const lane = laneOf(instance, this.#config.labelKey, this.#stableLane)
      const existing = this.members.get(key)
      if (existing !== undefined) {
        existing.instance = instance
        // A new published start time: a restart on the same address, warmed up again.
        followWarmupState(existing, instance, now)
        if (existing.lane !== lane) this.#moveTo(existing, lane)
        continue
      }
      this.#add(key, instance, lane, arriving, now)
    }
    for (const [key, member] of this.members) {
      if (seen.has(key)) continue
      // Gone: a member listed again later is new (it warms up again).
      this.members.delete(key)
      closePool(member)
    }
    this.#pruneBudgets()
    this.rebuild()
  }

  #add (key: string, instance: Instance, lane: string, arriving: boolean, now: number): Member {
    const origin = `${this.#config.protocol}//${instance.ip.includes(':') ? `[${instance.ip}]` : instance.ip}:${instance.port}`
    const member: Member = {
      key,
      origin,
      instance,
      lane,
      attrs: attributes(this.service, lane, origin),
      pool: null,
      budget: this.#budgets?.for(lane) ?? null,
      ...freshOutlierState(),
      ...freshWarmupState(instance, arriving, now)
    }
    this.members.set(key, member)
    return member
  }

  /**
   * The change set applied to the members, and the lanes it touched rebuilt; false (nothing
   * changed yet) when the sets are missing, large, or do not add up to `listed`.
   */
  #applyChange (listed: readonly Instance[], change: ListChange): boolean {
    const { added, removed, changed } = change
    if (added === undefined || removed === undefined || changed === undefined) return false
    const n = added.length + removed.length + changed.length
    if (n > SMALL_CHANGE && n * 4 > listed.length) return false
    // Checked before anything is touched: each key named once, removed and changed ones held, added ones not.
    const named = new Set<string>()
    for (const i of removed) if (!this.#holds(named, instanceKey(i), true)) return false
    for (const i of changed) if (!this.#holds(named, instanceKey(i), true)) return false
    for (const i of added) if (!this.#holds(named, instanceKey(i), false)) return false
    if (this.members.size + this.#others.size - removed.length + added.length !== listed.length) return false

    const now = Date.now()
    const touched = new Set<string>()
    for (const i of removed) {
      const key = instanceKey(i)
      const m = this.members.get(key)
      if (m === undefined) this.#others.delete(key)
      else this.#drop(m, touched)
    }
    for (const instance of changed) {
      const key = instanceKey(instance)
      const m = this.members.get(key)
      if (!takesCalls(instance)) {
        if (m !== undefined) this.#drop(m, touched)
        this.#others.set(key, instance)
        continue
      }
      const lane = laneOf(instance, this.#config.labelKey, this.#stableLane)
      if (m === undefined) {
        // Was consumer-only: a new member, as the whole-list path makes it.
        this.#others.delete(key)
        touched.add(this.#add(key, instance, lane, true, now).lane)
        continue
      }
      const before = m.instance
      const warmFrom = m.warmFrom
      m.instance = instance
      followWarmupState(m, instance, now)
      if (m.lane !== lane) {
        touched.add(m.lane)
        this.#moveTo(m, lane)
        touched.add(lane)
      } else if (m.warmFrom !== warmFrom || before.weight !== instance.weight || eligible(before) !== eligible(instance)) {
        touched.add(lane)
      }
      // Otherwise (other metadata) the member's place in its lane is unchanged: no lane is rebuilt.
    }
    for (const instance of added) {
      const key = instanceKey(instance)
      if (!takesCalls(instance)) this.#others.set(key, instance)
      else touched.add(this.#add(key, instance, laneOf(instance, this.#config.labelKey, this.#stableLane), true, now).lane)
    }
    const index = this.#index
    // Warming lanes are rebuilt too: their weights follow the clock, as in a whole rebuild.
    if (index.warming > 0) for (const lane of index.lanes.values()) if (lane.warming > 0) touched.add(lane.name)
    if (touched.size === 0) return true
    const members: Member[] = []
    for (const m of this.members.values()) if (touched.has(m.lane)) members.push(m)
    this.#index = this.#indexOf(members, { index, rebuilt: touched })
    this.#budgets?.prune((lane) => this.#index.lanes.has(lane))
    return true
  }

  /** `key` named once in a change set, and held (or not) by the table. */
  #holds (named: Set<string>, key: string, held: boolean): boolean {
    if (named.has(key)) return false
    named.add(key)
    return (this.members.has(key) || this.#others.has(key)) === held
  }

  #drop (m: Member, touched: Set<string>): void {
    // Gone: a member listed again later is new (it warms up again).
    this.members.delete(m.key)
    closePool(m)
    touched.add(m.lane)
  }

  #moveTo (m: Member, lane: string): void {
    m.lane = lane
    m.attrs = attributes(this.service, lane, m.origin)
    m.budget = this.#budgets?.for(lane) ?? null
  }

  #pruneBudgets (): void {
    if (this.#budgets === null) return
    const lanes = new Set<string>()
    for (const m of this.members.values()) lanes.add(m.lane)
    this.#budgets.prune((lane) => lanes.has(lane))
  }

  /** The retry budgets of this service's lanes (null when off). */
  get budgets (): RetryBudgets | null {
    return this.#budgets
  }

  /**
   * This service's route under `cfg` (from the lanes resolver) and the defaults; the same object
   * while nothing changed. A new stable lane moves the unlabelled members with it.
   */
  routeFor (cfg: LaneConfig | undefined, defaults: { stable: string; strict: boolean }): Route {
    const route = resolveRoute(cfg, defaults, this.#route)
    if (route.stable !== this.#stableLane) this.#setStableLane(route.stable)
    return (this.#route = route)
  }

  get stableLane (): string {
    return this.#stableLane
  }

  #setStableLane (stable: string): void {
    this.#stableLane = stable
    for (const m of this.members.values()) {
      const lane = laneOf(m.instance, this.#config.labelKey, stable)
      if (lane !== m.lane) this.#moveTo(m, lane)
    }
    this.#pruneBudgets()
    this.rebuild()
  }

  /** A new index of the members as they stand now (warm-up weights as of now). */
  rebuild (): void {
    this.#index = this.#indexOf(this.members.values())
  }

  /** An index of `members` (of the lanes `base.rebuilt` names, when given; see LaneIndex). */
  #indexOf (members: Iterable<Member>, base?: { index: LaneIndex<Member>; rebuilt: ReadonlySet<string> }): LaneIndex<Member> {
    const warmup = this.#config.warmup
    const index = new LaneIndex(this.service, members, info, warmup === false ? undefined : { policy: warmup, now: Date.now() }, base)
    if (warmup !== false && index.warming > 0 && this.#warmTimer === null && !this.#closed) {
      // Weights follow the ramp on a coarse clock: a pick never computes the curve.
      this.#warmTimer = setTimeout(() => {
        this.#warmTimer = null
        if (!this.#closed) this.rebuild()
      }, warmupRefreshMs(warmup))
      this.#warmTimer.unref()
    }
    return index
  }

  poolFor (member: Member): InstancePool {
    if (member.pool === null) member.pool = this.#config.factory(member.origin, this.#config.poolOptions)
    return member.pool
  }

  /**
   * Send one request to `member` over a new connection of its own, closed once the request is
   * done: the member's pool may hold more kept-alive connections the instance has given up on.
   */
  sendFresh (member: Member, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closed) return false
    const client = this.#config.factory(member.origin, { ...this.#config.poolOptions, connections: 1 })
    this.#fresh.add(client)
    client.dispatch(opts, handler as never)
    // Graceful: resolves after the request above has completed.
    client.close().then(
      () => this.#fresh.delete(client),
      () => this.#fresh.delete(client)
    )
    return true
  }

  get openPools (): number {
    let n = 0
    for (const m of this.members.values()) if (m.pool !== null) n++
    return n
  }

  recordSuccess (member: Member): void {
    this.#outlier.recordSuccess(member)
  }

  /** An answer arrived: a success, unless 5xx answers count as failures. */
  recordResponse (member: Member, statusCode: number): void {
    if (statusCode >= 500 && this.#config.outlier.count5xx) this.#outlier.recordFailure(member)
    else this.#outlier.recordSuccess(member)
  }

  /** A connection-level failure (see OutlierDetector#recordFailure). */
  recordFailure (member: Member, now?: number): void {
    this.#outlier.recordFailure(member, now)
  }

  /** Close every pool gracefully (in-flight requests finish) and stop the readmission timer. */
  close (): Promise<void> {
    return this.#end((pool) => pool.close())
  }

  /** Destroy every pool at once: in-flight requests fail with `err`. */
  destroy (err: Error | null): Promise<void> {
    return this.#end((pool) => pool.destroy(err))
  }

  async #end (end: (d: InstancePool) => Promise<void>): Promise<void> {
    this.#closed = true
    this.#outlier.close()
    if (this.#warmTimer !== null) clearTimeout(this.#warmTimer)
    this.#warmTimer = null
    const closing: Promise<void>[] = []
    for (const m of this.members.values()) {
      if (m.pool !== null) closing.push(end(m.pool).catch(() => {}))
      m.pool = null
    }
    for (const client of this.#fresh) closing.push(end(client).catch(() => {}))
    await Promise.all(closing)
  }
}

function info (m: Member): MemberInfo {
  const ok = eligible(m.instance)
  return { lane: m.lane, weight: m.instance.weight, pickable: ok && m.ejectedUntil === 0, ejected: ok && m.ejectedUntil !== 0, warmFrom: m.warmFrom }
}

function attributes (service: string, lane: string, origin: string): Attributes {
  return { service, lane, instance: origin.slice(origin.indexOf('//') + 2) }
}

function closePool (member: Member): void {
  const pool = member.pool
  member.pool = null
  // Graceful: requests already on this instance complete, then its sockets close.
  if (pool !== null) pool.close().catch(() => {})
}
