// The `flowtag_lanes` load-balancing policy: one subchannel per instance, kept connected, and a
// picker that sends each call to an instance of the call's lane (from its `x-flow-tag`
// metadata) by weight, with @flowtag/outbound's lane rules (LaneIndex: fallback to stable
// unless strict, untagged traffic by lane weights, the same error codes). Calls that end
// UNAVAILABLE count against their instance (OutlierDetector); ejected and unreachable
// instances are not picked.
import { connectivityState, experimental, Metadata, status, type ChannelOptions } from '@grpc/grpc-js'
import { FLOW_TAG_HEADER, parseTag } from '@flowtag/context'
import { eligible, freshOutlierState, laneOf, LaneIndex, OutlierDetector, resolveRoute, type Instance, type OutlierState, type Route } from '@flowtag/outbound/lanes'
import { ROUTING_ERROR_KEY } from './errors.ts'
import { INSTANCES_ATTRIBUTE, LB_NAME, TRIED_KEY } from './keys.ts'
import { routingOf, type RoutingEntry } from './registry.ts'

type Subchannel = experimental.SubchannelInterface

interface Member extends OutlierState {
  readonly key: string
  instance: Instance
  lane: string
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
  #index = new LaneIndex<Member>('', [], info)
  #route: Route | null = null
  #stable = 'stable'
  #outlier: OutlierDetector<Member> | null = null
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
    if (!endpoints.ok) {
      // Keep serving the last list; with none, calls fail with the resolver's status.
      if (this.#members.size === 0) this.#helper.updateState(connectivityState.TRANSIENT_FAILURE, new experimental.UnavailablePicker(endpoints.error), endpoints.error.details)
      return true
    }
    const list = (options[INSTANCES_ATTRIBUTE] as readonly Instance[] | undefined) ?? []
    const seen = new Set<string>()
    for (const instance of list) {
      const key = `${instance.ip}:${instance.port}`
      if (seen.has(key)) continue
      seen.add(key)
      const lane = laneOf(instance, routing.options.labelKey, this.#stable)
      const existing = this.#members.get(key)
      if (existing !== undefined) {
        existing.instance = instance
        existing.lane = lane
        continue
      }
      const subchannel = this.#helper.createSubchannel({ host: instance.ip, port: instance.port }, options)
      const member: Member = {
        key,
        instance,
        lane,
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
        ...freshOutlierState()
      }
      subchannel.ref()
      subchannel.addConnectivityStateListener(member.listener)
      this.#members.set(key, member)
      if (eligible(instance)) subchannel.startConnecting()
    }
    for (const [key, m] of this.#members) {
      if (seen.has(key)) continue
      this.#members.delete(key)
      this.#drop(m)
    }
    this.#publish()
    return true
  }

  #onState (member: Member, next: connectivityState): void {
    if (this.#members.get(member.key) !== member) return
    member.state = next
    // Keep every instance connected (as round_robin does): lanes need their instances at hand.
    if (next === connectivityState.IDLE && eligible(member.instance)) member.subchannel.startConnecting()
    this.#publish()
  }

  #drop (m: Member): void {
    m.subchannel.removeConnectivityStateListener(m.listener)
    m.subchannel.unref()
  }

  /** Rebuild the lane index and hand the channel a new picker (queued calls pick again). */
  #publish (): void {
    if (this.#destroyed) return
    this.#index = new LaneIndex(this.#service, this.#members.values(), info)
    let ready = false
    let connecting = false
    for (const m of this.#members.values()) {
      if (m.state === connectivityState.READY) ready = true
      else if (m.state === connectivityState.CONNECTING || m.state === connectivityState.IDLE) connecting = true
    }
    const state = ready ? connectivityState.READY : connecting ? connectivityState.CONNECTING : connectivityState.TRANSIENT_FAILURE
    this.#helper.updateState(state, new LanesPicker(this, this.#index), state === connectivityState.TRANSIENT_FAILURE ? `no reachable instance of "${this.#service}"` : null)
  }

  /** The route of this service for the current call (the lanes resolver is read per call). */
  route (): Route {
    const o = (this.#routing as RoutingEntry).options
    const route = resolveRoute(o.lanes?.(this.#service), { stable: o.stableLane, strict: o.strict }, this.#route)
    if (route.stable !== this.#stable) {
      // A new stable lane: unlabelled instances move with it.
      this.#stable = route.stable
      for (const m of this.#members.values()) m.lane = laneOf(m.instance, o.labelKey, route.stable)
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

  #logEjection (m: Member, ejected: boolean, until: number): void {
    const log = (this.#routing as RoutingEntry).options.logger
    const obj = { service: this.#service, lane: m.lane, instance: m.key }
    if (ejected) log.warn({ ...obj, ejectedForMs: until - m.lastEjectedAt, timesEjected: m.timesEjected }, 'gRPC instance ejected after consecutive UNAVAILABLE calls')
    else log.info(obj, 'ejected gRPC instance readmitted')
  }

  exitIdle (): void {
    for (const m of this.#members.values()) if (m.state === connectivityState.IDLE && eligible(m.instance)) m.subchannel.startConnecting()
  }

  resetBackoff (): void {}

  destroy (): void {
    this.#destroyed = true
    this.#outlier?.close()
    for (const m of this.#members.values()) this.#drop(m)
    this.#members.clear()
  }

  getTypeName (): string {
    return LB_NAME
  }
}

/** Unreachable instances (TRANSIENT_FAILURE) are out like ejected ones: a call would fail there. */
function info (m: Member) {
  const ok = eligible(m.instance)
  const out = m.ejectedUntil !== 0 || m.state === connectivityState.TRANSIENT_FAILURE || m.state === connectivityState.SHUTDOWN
  return { lane: m.lane, weight: m.instance.weight, pickable: ok && !out, ejected: ok && out }
}

const QUEUE: experimental.PickResult = { pickResultType: experimental.PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null }

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
    let member: Member
    try {
      member = this.#index.select(tag, this.#balancer.route(), exclude)
    } catch (err) {
      const metadata = new Metadata()
      metadata.set(ROUTING_ERROR_KEY, (err as { code?: string }).code ?? 'Error')
      return {
        pickResultType: experimental.PickResultType.TRANSIENT_FAILURE,
        subchannel: null,
        status: { code: status.UNAVAILABLE, details: (err as Error).message, metadata },
        onCallStarted: null,
        onCallEnded: null
      }
    }
    if (member.state !== connectivityState.READY) {
      // Its lane's instance is still connecting: wait for it rather than leave the lane.
      if (member.state === connectivityState.IDLE) member.subchannel.startConnecting()
      return QUEUE
    }
    return member.picked
  }
}

/** The lane of a call: its `x-flow-tag` (a signed tag's lane part); an invalid tag is ignored. */
export function laneOfCall (md: Metadata): string | undefined {
  const v = md.get(FLOW_TAG_HEADER)[0]
  if (typeof v !== 'string') return undefined
  const tilde = v.indexOf('~')
  return parseTag(tilde === -1 ? v : v.slice(0, tilde))
}
