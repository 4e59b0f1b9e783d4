// The `flowtag_lanes` load-balancing policy: one subchannel per instance, kept connected, and a
// picker that sends each call to an instance of the call's lane (from its `x-flow-tag`
// metadata) by weight, with @flowtag/outbound's lane rules (LaneIndex: fallback to stable
// unless strict, untagged traffic by lane weights, the same error codes). Calls that end
// UNAVAILABLE count against their instance (OutlierDetector); ejected instances are not picked.
// As grpc's round_robin, only READY instances take calls while their lane has one: an instance
// that is connecting (for ever, when a peer accepts TCP and never speaks HTTP/2), failed or idle
// is kept connecting and stays out until READY. A lane with none READY waits for its connecting
// instances at most `connectWaitMs` (a fresh channel's first calls keep their lane), then counts
// as empty: fallback to stable, or UNAVAILABLE when strict.
// New instances warm up (outbound's warm-up: the index is rebuilt and a new picker published
// every second or so while one warms), and a retry (a call carrying `x-flowtag-tried`) is sent
// only while its lane's retry budget allows; a refused one is dropped, so the caller gets the
// failure that caused it.
import { connectivityState, experimental, Metadata, status, type ChannelOptions } from '@grpc/grpc-js'
import { FLOW_TAG_HEADER, parseTag } from '@flowtag/context'
import {
  eligible,
  errorCodes,
  followWarmupState,
  freshOutlierState,
  freshWarmupState,
  laneOf,
  LaneIndex,
  OutlierDetector,
  resolveRoute,
  warmupRefreshMs,
  type Instance,
  type MemberInfo,
  type OutboundError,
  type OutlierState,
  type RetryBudget,
  type RetryBudgets,
  type Route,
  type WarmupPolicy,
  type WarmupState
} from '@flowtag/outbound/lanes'
import { ROUTING_ERROR_KEY } from './errors.ts'
import { INSTANCES_ATTRIBUTE, LB_NAME, RETRY_REFUSED, TRIED_KEY } from './keys.ts'
import { routingOf, type RoutingEntry } from './registry.ts'

type Subchannel = experimental.SubchannelInterface

interface Member extends OutlierState, WarmupState {
  readonly key: string
  instance: Instance
  lane: string
  /** The retry budget of the member's lane; null when budgets are off. */
  budget: RetryBudget | null
  readonly subchannel: Subchannel
  state: connectivityState
  readonly listener: experimental.ConnectivityStateListener
  /** The pick result that sends a call here, made once: a pick allocates nothing. */
  readonly picked: experimental.PickResult
}

class LanesConfig implements experimental.TypedLoadBalancingConfig {
  readonly service: string
  readonly routing: string
  constructor (service: string, routing: string) {
    this.service = service
    this.routing = routing
  }

  getLoadBalancerName (): string {
    return LB_NAME
  }

  toJsonObject (): object {
    return { [LB_NAME]: { service: this.service, routing: this.routing } }
  }

  static createFromJson (obj: unknown): LanesConfig {
    const o = obj as { service?: unknown; routing?: unknown } | null
    if (typeof o?.service !== 'string' || typeof o.routing !== 'string') throw new Error(`${LB_NAME}: config needs "service" and "routing" strings`)
    return new LanesConfig(o.service, o.routing)
  }
}

let registered = false

export function registerBalancer (): void {
  if (registered) return
  registered = true
  experimental.registerLoadBalancerType(LB_NAME, LanesBalancer, LanesConfig)
}

class LanesBalancer implements experimental.LoadBalancer {
  readonly #helper: experimental.ChannelControlHelper
  readonly #members = new Map<string, Member>()
  #routing: RoutingEntry | undefined
  #service = ''
  #index = new LaneIndex<Member>('', [], () => ({ lane: '', weight: 0, pickable: false, ejected: false }))
  #route: Route | null = null
  #stable = 'stable'
  #outlier: OutlierDetector<Member> | null = null
  /** Per lane without a READY member: until when its calls wait for its connecting members. */
  readonly #waitUntil = new Map<string, number>()
  /** Lanes whose calls wait (queue) for their connecting members, as of the last #publish. */
  #waiting = new Set<string>()
  /** Member states per lane, as of the last #publish (for the details of a failed pick). */
  #states = new Map<string, LaneStates>()
  /** Some eligible member is IDLE (exitIdle has work to do), as of the last #publish. */
  #idle = false
  /** Republishes when the first open wait ends, so that queued calls pick again. */
  #timer: NodeJS.Timeout | null = null
  /** Republishes while some member warms up: its weight follows the ramp. */
  #warmTimer: NodeJS.Timeout | null = null
  #warmup: WarmupPolicy | false = false
  #budgets: RetryBudgets | null = null
  /** A list has been applied: members listed later were seen arriving (they warm up from then). */
  #listed = false
  #destroyed = false

  constructor (helper: experimental.ChannelControlHelper) {
    this.#helper = helper
  }

  updateAddressList (endpoints: experimental.StatusOr<experimental.Endpoint[]>, config: experimental.TypedLoadBalancingConfig, options: ChannelOptions): boolean {
    if (!(config instanceof LanesConfig)) return false
    const routing = routingOf(options)
    if (routing === undefined) return false
    if (this.#routing !== routing) {
      this.#routing = routing
      this.#stable = routing.options.stableLane
      this.#outlier?.close()
      this.#outlier = new OutlierDetector<Member>({ ...routing.options.outlier, count5xx: false }, {
        members: () => this.#members.values(),
        has: (m) => this.#members.get(m.key) === m,
        changed: () => this.#publish(),
        onEjection: (m, ejected, until) => this.#logEjection(m, ejected, until)
      })
    }
    this.#service = config.service
    // One per FlowTagGrpc and service: every channel to the service shares its lanes' budgets.
    const policies = routing.policies(config.service)
    this.#warmup = policies.warmup
    this.#budgets = policies.budgets
    if (!endpoints.ok) {
      // Keep serving the last list; with none, calls fail with the resolver's status.
      if (this.#members.size === 0) this.#helper.updateState(connectivityState.TRANSIENT_FAILURE, new experimental.UnavailablePicker(endpoints.error), endpoints.error.details)
      return true
    }
    const list = (options[INSTANCES_ATTRIBUTE] as readonly Instance[] | undefined) ?? []
    const seen = new Set<string>()
    const now = Date.now()
    const arriving = this.#listed
    this.#listed = true
    for (const instance of list) {
      const key = `${instance.ip}:${instance.port}`
      if (seen.has(key)) continue
      seen.add(key)
      const lane = laneOf(instance, routing.options.labelKey, this.#stable)
      const existing = this.#members.get(key)
      if (existing !== undefined) {
        existing.instance = instance
        // A new published start time: a restart on the same address, warmed up again.
        followWarmupState(existing, instance, now)
        existing.lane = lane
        existing.budget = this.#budgets?.for(lane) ?? null
        connect(existing) // it may have become eligible
        continue
      }
      const subchannel = this.#helper.createSubchannel({ host: instance.ip, port: instance.port }, options)
      const member: Member = {
        key,
        instance,
        lane,
        budget: this.#budgets?.for(lane) ?? null,
        subchannel,
        state: subchannel.getConnectivityState(),
        listener: (_sub, _prev, next) => this.#onState(member, next),
        picked: {
          pickResultType: experimental.PickResultType.COMPLETE,
          subchannel,
          status: null,
          onCallStarted: null,
          onCallEnded: (code) => this.callEnded(member, code)
        },
        ...freshOutlierState(),
        ...freshWarmupState(instance, arriving, now)
      }
      subchannel.ref()
      subchannel.addConnectivityStateListener(member.listener)
      this.#members.set(key, member)
      connect(member)
    }
    for (const [key, m] of this.#members) {
      if (seen.has(key)) continue
      // Gone: a member listed again later is new (it warms up again).
      this.#members.delete(key)
      this.#drop(m)
    }
    this.#budgets?.prune((lane) => { for (const m of this.#members.values()) if (m.lane === lane) return true; return false })
    this.#publish()
    return true
  }

  #onState (member: Member, next: connectivityState): void {
    if (this.#members.get(member.key) !== member) return
    member.state = next
    // Keep every instance connected (as round_robin does): lanes need their instances at hand.
    connect(member)
    this.#publish()
  }

  #drop (m: Member): void {
    m.subchannel.removeConnectivityStateListener(m.listener)
    m.subchannel.unref()
  }

  /**
   * Rebuild the lane index and hand the channel a new picker (queued calls pick again). O(members),
   * on state and list changes only: a pick reads the index, nothing more.
   */
  #publish (): void {
    if (this.#destroyed) return
    const now = performance.now()
    const states = new Map<string, LaneStates>()
    let ready = false
    let connecting = false
    let idle = false
    for (const m of this.#members.values()) {
      if (m.state === connectivityState.IDLE && eligible(m.instance)) idle = true
      if (m.state === connectivityState.READY) ready = true
      else if (m.state === connectivityState.CONNECTING || m.state === connectivityState.IDLE) connecting = true
      let s = states.get(m.lane)
      if (s === undefined) states.set(m.lane, (s = { ready: 0, connecting: 0, unreachable: 0, ejected: 0, ineligible: 0 }))
      s[standing(m)]++
    }
    // A lane's wait opens when it has no READY member and closes when it has one again: a member
    // stuck connecting costs its lane's calls one wait, not one per call.
    const wait = (this.#routing as RoutingEntry).options.connectWaitMs
    const waiting = new Set<string>()
    let next = Infinity
    for (const [lane, s] of states) {
      if (s.ready > 0) {
        this.#waitUntil.delete(lane)
        continue
      }
      let until = this.#waitUntil.get(lane)
      if (until === undefined) this.#waitUntil.set(lane, (until = now + wait))
      if (s.connecting > 0 && now < until) {
        waiting.add(lane)
        next = Math.min(next, until)
      }
    }
    for (const lane of this.#waitUntil.keys()) if (!states.has(lane)) this.#waitUntil.delete(lane)
    this.#waiting = waiting
    this.#states = states
    this.#idle = idle
    const warmup = this.#warmup
    this.#index = warmup === false
      ? new LaneIndex(this.#service, this.#members.values(), (m) => this.#info(m))
      : new LaneIndex(this.#service, this.#members.values(), (m) => this.#info(m), { policy: warmup, now: Date.now() })
    if (warmup !== false && this.#index.warming > 0 && this.#warmTimer === null) {
      this.#warmTimer = setTimeout(() => {
        this.#warmTimer = null
        this.#publish()
      }, warmupRefreshMs(warmup))
      this.#warmTimer.unref()
    }
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    if (next !== Infinity) {
      this.#timer = setTimeout(() => {
        this.#timer = null
        this.#publish()
      }, Math.ceil(next - now) + 1)
      this.#timer.unref()
    }
    const state = ready ? connectivityState.READY : connecting ? connectivityState.CONNECTING : connectivityState.TRANSIENT_FAILURE
    this.#helper.updateState(state, new LanesPicker(this, this.#index), state === connectivityState.TRANSIENT_FAILURE ? `no reachable instance of "${this.#service}"` : null)
  }

  /**
   * How a member stands in the index. READY members are pickable; connecting ones only while
   * their lane (none READY) waits for them, and a pick of one queues the call. Any other member
   * not READY counts as ejected (unreachable): FLOWTAG_OUTBOUND_ALL_EJECTED when nothing is left.
   */
  #info (m: Member): MemberInfo {
    const lane = m.lane
    const weight = m.instance.weight
    if (!eligible(m.instance)) return { lane, weight, pickable: false, ejected: false }
    const s = standing(m)
    const pickable = s === 'ready' || (s === 'connecting' && this.#waiting.has(lane))
    return { lane, weight, pickable, ejected: !pickable, warmFrom: m.warmFrom }
  }

  /** Why no instance of `lanes` could take a call, for a failed pick's details ('' when none is listed). */
  notReady (lanes: readonly string[]): string {
    const parts: string[] = []
    for (const lane of lanes) {
      const s = this.#states.get(lane)
      if (s === undefined || s.connecting + s.unreachable + s.ejected === 0) continue
      const wait = (this.#routing as RoutingEntry).options.connectWaitMs
      const counts = [
        s.connecting > 0 ? `${s.connecting} connecting for over connectWaitMs (${wait} ms)` : '',
        s.unreachable > 0 ? `${s.unreachable} unreachable (connection failed)` : '',
        s.ejected > 0 ? `${s.ejected} ejected (consecutive UNAVAILABLE calls)` : ''
      ]
      parts.push(`lane "${lane}": ${counts.filter((c) => c !== '').join(', ')}`)
    }
    return parts.join('; ')
  }

  /** The route of this service for the current call (the lanes resolver is read per call). */
  route (): Route {
    const o = (this.#routing as RoutingEntry).options
    const route = resolveRoute(o.lanes?.(this.#service), { stable: o.stableLane, strict: o.strict }, this.#route)
    if (route.stable !== this.#stable) {
      // A new stable lane: unlabelled instances move with it.
      this.#stable = route.stable
      for (const m of this.#members.values()) {
        m.lane = laneOf(m.instance, o.labelKey, route.stable)
        m.budget = this.#budgets?.for(m.lane) ?? null
      }
      this.#route = route
      this.#publish()
    }
    return (this.#route = route)
  }

  callEnded (member: Member, code: status): void {
    if (code === status.UNAVAILABLE) this.#outlier?.recordFailure(member)
    else this.#outlier?.recordSuccess(member)
  }

  member (key: string): Member | undefined {
    return this.#members.get(key)
  }

  /** A retry was refused by `budget`: counted (service, lane of the instance that failed). */
  refused (lane: string): void {
    ;(this.#routing as RoutingEntry).retriesRefused.add(1, { service: this.#service, lane })
  }

  #logEjection (m: Member, ejected: boolean, until: number): void {
    const log = (this.#routing as RoutingEntry).options.logger
    const obj = { service: this.#service, lane: m.lane, instance: m.key }
    if (ejected) log.warn({ ...obj, ejectedForMs: until - m.lastEjectedAt, timesEjected: m.timesEjected }, 'gRPC instance ejected after consecutive UNAVAILABLE calls')
    else log.info(obj, 'ejected gRPC instance readmitted')
  }

  /** grpc-js calls this on every call: O(1) unless some eligible member is IDLE. */
  exitIdle (): void {
    if (!this.#idle) return
    for (const m of this.#members.values()) if (m.state === connectivityState.IDLE) connect(m)
  }

  resetBackoff (): void {}

  destroy (): void {
    this.#destroyed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    if (this.#warmTimer !== null) clearTimeout(this.#warmTimer)
    this.#warmTimer = null
    this.#outlier?.close()
    for (const m of this.#members.values()) this.#drop(m)
    this.#members.clear()
  }

  getTypeName (): string {
    return LB_NAME
  }
}

/** A lane's members by where they stand. */
interface LaneStates {
  ready: number
  connecting: number
  /** Failed to connect (TRANSIENT_FAILURE), or shut down. */
  unreachable: number
  /** By outlier detection. */
  ejected: number
  /** Unhealthy, disabled or weight 0 in the registry: never picked. */
  ineligible: number
}

function standing (m: Member): keyof LaneStates {
  if (!eligible(m.instance)) return 'ineligible'
  if (m.ejectedUntil !== 0) return 'ejected'
  if (m.state === connectivityState.READY) return 'ready'
  if (m.state === connectivityState.CONNECTING || m.state === connectivityState.IDLE) return 'connecting'
  return 'unreachable'
}

/** Ask an eligible member that is not READY to connect: IDLE ones now, failed ones again when their backoff ends. */
function connect (m: Member): void {
  if ((m.state === connectivityState.IDLE || m.state === connectivityState.TRANSIENT_FAILURE) && eligible(m.instance)) m.subchannel.startConnecting()
}

const QUEUE: experimental.PickResult = { pickResultType: experimental.PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null }

/**
 * A retry the budget refused. DROP fails the call even when it is `waitForReady`; the channel of
 * clientOptions() then reports the failure that caused the retry (ROUTING_ERROR_KEY).
 */
const REFUSED: experimental.PickResult = (() => {
  const metadata = new Metadata()
  metadata.set(ROUTING_ERROR_KEY, RETRY_REFUSED)
  return {
    pickResultType: experimental.PickResultType.DROP,
    subchannel: null,
    status: { code: status.UNAVAILABLE, details: 'retry not sent: the retry budget of the lane is spent', metadata },
    onCallStarted: null,
    onCallEnded: null
  }
})()

class LanesPicker implements experimental.Picker {
  readonly #balancer: LanesBalancer
  readonly #index: LaneIndex<Member>

  constructor (balancer: LanesBalancer, index: LaneIndex<Member>) {
    this.#balancer = balancer
    this.#index = index
  }

  pick (args: experimental.PickArgs): experimental.PickResult {
    const md = args.metadata
    const tag = laneOfCall(md)
    const tried = md.get(TRIED_KEY)
    let exclude: Member[] | undefined
    if (tried.length > 0) {
      exclude = []
      for (const t of tried) {
        const m = this.#balancer.member(String(t))
        if (m !== undefined) exclude.push(m)
      }
    }
    let route: Route | undefined
    let member: Member
    try {
      route = this.#balancer.route()
      member = this.#index.select(tag, route, exclude)
    } catch (err) {
      return failed(err, route, this.#balancer)
    }
    if (member.state !== connectivityState.READY) {
      // Its lane has no READY instance and waits for this one (bounded by connectWaitMs): the
      // call queues until the next picker rather than leave the lane.
      if (member.state === connectivityState.IDLE) member.subchannel.startConnecting()
      return QUEUE
    }
    if (exclude === undefined) member.budget?.recordRequest()
    else {
      // A retry is taken from the budget of the lane of the instance that failed (the last tried).
      const failed = exclude.length > 0 ? exclude[exclude.length - 1]! : member
      if (failed.budget !== null && !failed.budget.tryRetry()) {
        this.#balancer.refused(failed.lane)
        return REFUSED
      }
    }
    return member.picked
  }
}

/**
 * A routing failure as a pick result: UNAVAILABLE with the flowtag code in its metadata. A
 * TRANSIENT_FAILURE pick fails the call at once, unless it is `waitForReady` (grpc-js queues it
 * until the next picker: it waits for an instance up to its deadline).
 */
function failed (thrown: unknown, route: Route | undefined, balancer: LanesBalancer): experimental.PickResult {
  const err = (typeof thrown === 'object' && thrown !== null ? thrown : {}) as Partial<OutboundError>
  const metadata = new Metadata()
  metadata.set(ROUTING_ERROR_KEY, err.code ?? 'Error')
  let details = thrown instanceof Error ? thrown.message : String(thrown)
  const lane = err.lane
  if (err.code === errorCodes.ALL_EJECTED && lane !== undefined && route !== undefined) {
    const lanes = route.strict || lane === route.stable ? [lane] : [lane, route.stable]
    details = `no instance of "${err.service}" in lane "${lanes.join('" or "')}" can take calls (${balancer.notReady(lanes)})`
  }
  return {
    pickResultType: experimental.PickResultType.TRANSIENT_FAILURE,
    subchannel: null,
    status: { code: status.UNAVAILABLE, details, metadata },
    onCallStarted: null,
    onCallEnded: null
  }
}

/** The lane of a call: its `x-flow-tag` (a signed tag's lane part); an invalid tag is ignored. */
export function laneOfCall (md: Metadata): string | undefined {
  const v = md.get(FLOW_TAG_HEADER)[0]
  if (typeof v !== 'string') return undefined
  const tilde = v.indexOf('~')
  return parseTag(tilde === -1 ? v : v.slice(0, tilde))
}
