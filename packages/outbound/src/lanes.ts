// The lane rules, one implementation for every transport (the HTTP dispatcher, the gRPC picker):
// a request tagged with a lane goes to that lane, else to the stable lane unless the route is
// strict; untagged traffic follows the service's lane weights when there are any, else goes to
// stable. Within a lane, instances are picked by weight in O(1) (alias tables), and a
// LaneIndex is rebuilt only when its members change (or, while some member warms up, on a coarse
// clock), so a pick allocates nothing and never computes a warm-up curve.
import { AliasTable } from './alias-table.ts'
import { errorCodes, OutboundError } from './errors.ts'
import { warmupFactor, type WarmupPolicy } from './warmup.ts'

/** What routing needs to know about a service's lanes; `serviceLanes()` of @flowtag/rules fits. */
export interface LaneConfig {
  /** Label value of the stable lane of this service. */
  stable: string
  /** Never leave the requested lane: an empty lane is an error instead of a fallback to stable. */
  strict?: boolean
  /** Share of untagged traffic per lane (relative weights). */
  weights?: Record<string, number>
  /** Candidate lanes whose lease ran out: requests tagged with one are served by `stable` (receipt `lease-expired`). */
  expired?: readonly string[]
}

/** Per-service lane configuration, called per request or call: keep it cheap (read a cached RuleSet). */
export type LanesResolver = (service: string) => LaneConfig | undefined

/** A service's effective lane configuration (defaults applied). */
export interface Route {
  stable: string
  strict: boolean
  weights: Record<string, number> | undefined
}

/**
 * The route of a service: `cfg` (from a LanesResolver) over the defaults. Returns `last` when
 * nothing changed, so that callers can key caches on the route's identity.
 */
export function resolveRoute (cfg: LaneConfig | undefined, defaults: { stable: string; strict: boolean }, last: Route | null): Route {
  const stable = cfg?.stable ?? defaults.stable
  const strict = cfg?.strict ?? defaults.strict
  const weights = cfg?.weights
  if (last !== null && last.stable === stable && last.strict === strict && last.weights === weights) return last
  return { stable, strict, weights }
}

/** How a member stands when the index is built. */
export interface MemberInfo {
  lane: string
  weight: number
  /** Eligible (healthy, enabled, weight > 0) and not ejected. */
  pickable: boolean
  /** Eligible but ejected by outlier detection. */
  ejected: boolean
  /** Epoch ms its warm-up ramp counts from (see warmup.ts); absent or -Infinity: not warming. */
  warmFrom?: number
}

/** Warm-up applied when an index is built: the policy, and the time the weights are computed for. */
export interface IndexWarmup {
  policy: WarmupPolicy
  /** Epoch ms (Date.now()). */
  now: number
}

export interface Lane<M> {
  readonly name: string
  /** All members labelled with this lane, pickable or not. */
  readonly members: readonly M[]
  /** Alias table over the pickable members; null when none is pickable. */
  readonly table: AliasTable<M> | null
  /** Effective weights of `table.items`, index for index (warm-up applied). */
  readonly weights: readonly number[]
  /** Members that would be pickable if they were not ejected. */
  readonly ejected: number
  /** Pickable members within their warm-up window. */
  readonly warming: number
  /**
   * Whether warming members get less than their weight: not when more than half of the lane's
   * pickable members are warming (a lane of new instances gets its full share at once).
   */
  readonly heldBack: boolean
}

/** A share of untagged traffic that no member can serve (an empty lane under a strict route). */
class Unserved {
  readonly lane: string
  constructor (lane: string) {
    this.lane = lane
  }
}

/** Untagged traffic split by lane weights, as one alias table over members (lane share × member share). */
interface Weighted<M> {
  source: Record<string, number>
  stable: string
  strict: boolean
  table: AliasTable<M | Unserved> | null
}

/** An immutable snapshot of one service's members, grouped into lanes. */
export class LaneIndex<M> {
  readonly service: string
  readonly lanes: ReadonlyMap<string, Lane<M>>
  /** Every member, pickable or not. */
  readonly size: number
  /** Pickable members across all lanes. */
  readonly available: number
  /** Pickable members within their warm-up window, across all lanes: the index should be rebuilt as time passes. */
  readonly warming: number
  #weighted: Weighted<M> | null = null

  /**
   * `warmup`: apply the warm-up curve to members with a `warmFrom`, as of `warmup.now`, except in
   * lanes where more than half of the pickable members warm. Lane shares never change: warm-up
   * moves traffic between the members of a lane, never between lanes.
   *
   * `base`: a small change. `members` are then only the members of the lanes named in
   * `base.rebuilt` (as they stand now; a lane left with none disappears), and every other lane is
   * taken from `base.index` as it is: its members, weights and warm-up as of that index's build.
   * The caller rebuilds every lane a change touched and every lane that warms.
   */
  constructor (service: string, members: Iterable<M>, info: (m: M) => MemberInfo, warmup?: IndexWarmup, base?: { index: LaneIndex<M>; rebuilt: ReadonlySet<string> }) {
    this.service = service
    const grouped = new Map<string, { members: M[]; items: M[]; weights: number[]; ejected: number; factors: number[] | null }>()
    let size = 0
    let available = 0
    let warming = 0
    for (const m of members) {
      size++
      const i = info(m)
      let g = grouped.get(i.lane)
      if (g === undefined) grouped.set(i.lane, (g = { members: [], items: [], weights: [], ejected: 0, factors: null }))
      g.members.push(m)
      if (i.pickable) {
        const f = warmup === undefined || i.warmFrom === undefined ? 1 : warmupFactor(warmup.policy, i.warmFrom, warmup.now)
        if (f < 1) {
          // Filled with 1s up to here on the lane's first warming member: no array for lanes with none.
          g.factors ??= g.items.map(() => 1)
          warming++
        }
        g.factors?.push(f)
        g.items.push(m)
        g.weights.push(i.weight)
        available++
      } else if (i.ejected) g.ejected++
    }
    const lanes = new Map<string, Lane<M>>()
    if (base !== undefined) {
      for (const [name, lane] of base.index.lanes) {
        if (base.rebuilt.has(name)) continue
        lanes.set(name, lane)
        size += lane.members.length
        available += lane.table?.size ?? 0
        warming += lane.warming
      }
    }
    for (const [name, g] of grouped) {
      let laneWarming = 0
      let heldBack = false
      const factors = g.factors
      if (factors !== null) {
        for (const f of factors) if (f < 1) laneWarming++
        // TSF's guard: with more than half of the lane warming, holding them back would overload the rest.
        heldBack = laneWarming * 2 <= g.items.length
        if (heldBack) for (let k = 0; k < factors.length; k++) g.weights[k] = (g.weights[k] as number) * (factors[k] as number)
      }
      lanes.set(name, { name, members: g.members, table: g.items.length === 0 ? null : new AliasTable(g.items, g.weights), weights: g.weights, ejected: g.ejected, warming: laneWarming, heldBack })
    }
    this.lanes = lanes
    this.size = size
    this.available = available
    this.warming = warming
  }

  /**
   * Pick a member for `tag` (undefined for untagged traffic) under `route`. `exclude` (retries
   * only) lists members already tried: the retry stays in the lane of the last one tried.
   * @throws {OutboundError} `FLOWTAG_OUTBOUND_UNKNOWN_SERVICE` (no member at all),
   *   `FLOWTAG_OUTBOUND_ALL_EJECTED`, `FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE`.
   */
  select (tag: string | undefined, route: Route, exclude?: readonly M[]): M {
    let lane = tag
    if (lane === undefined) {
      if (route.weights === undefined) lane = route.stable
      else if (exclude !== undefined && exclude.length > 0) lane = this.laneOfMember(exclude[exclude.length - 1] as M) ?? route.stable
      else {
        const picked = this.#weightedFor(route).table?.pick()
        // No positive weight: the stable lane; else a share no instance can serve.
        if (picked === undefined) lane = route.stable
        else if (picked instanceof Unserved) lane = picked.lane
        else return picked
      }
    }
    const first = this.#pickIn(lane, exclude)
    if (first !== undefined) return first
    if (lane !== route.stable && !route.strict) {
      const fallback = this.#pickIn(route.stable, exclude)
      if (fallback !== undefined) return fallback
    }
    throw this.#noInstance(lane, route, exclude)
  }

  /** The lane `m` is filed under in this index. */
  laneOfMember (m: M): string | undefined {
    for (const lane of this.lanes.values()) if (lane.members.includes(m)) return lane.name
    return undefined
  }

  #pickIn (name: string, exclude: readonly M[] | undefined): M | undefined {
    const lane = this.lanes.get(name)
    if (lane === undefined || lane.table === null) return undefined
    if (exclude === undefined || exclude.length === 0) return lane.table.pick()
    // Retry path, O(n): a weighted pick among the pickable members not tried yet.
    const items = lane.table.items
    let total = 0
    for (let i = 0; i < items.length; i++) if (!exclude.includes(items[i] as M)) total += lane.weights[i] as number
    if (total === 0) return undefined
    let r = Math.random() * total
    let last: M | undefined
    for (let i = 0; i < items.length; i++) {
      const m = items[i] as M
      if (exclude.includes(m)) continue
      last = m
      r -= lane.weights[i] as number
      if (r < 0) return m
    }
    return last
  }

  #weightedFor (route: Route): Weighted<M> {
    const weights = route.weights as Record<string, number>
    const wt = this.#weighted
    if (wt !== null && wt.stable === route.stable && wt.strict === route.strict && (wt.source === weights || sameWeights(wt.source, weights))) return wt
    return (this.#weighted = this.#buildWeighted(weights, route))
  }

  /** One alias table over every member untagged traffic can reach, weighted lane share × member share. */
  #buildWeighted (weights: Record<string, number>, route: Route): Weighted<M> {
    const shares = new Map<M | Unserved, number>()
    const add = (item: M | Unserved, w: number) => shares.set(item, (shares.get(item) ?? 0) + w)
    const spread = (name: string, w: number): boolean => {
      const lane = this.lanes.get(name)
      if (lane === undefined || lane.table === null) return false
      let total = 0
      for (const x of lane.weights) total += x
      lane.table.items.forEach((m, i) => add(m, (w * (lane.weights[i] as number)) / total))
      return true
    }
    for (const [lane, w] of Object.entries(weights)) {
      if (!Number.isFinite(w) || w <= 0) continue
      // An empty lane's share falls back to stable, as a tagged request would (unless strict).
      if (!spread(lane, w) && (route.strict || lane === route.stable || !spread(route.stable, w))) add(new Unserved(lane), w)
    }
    const items = [...shares.keys()]
    return { source: weights, stable: route.stable, strict: route.strict, table: items.length === 0 ? null : new AliasTable(items, [...shares.values()]) }
  }

  #noInstance (lane: string, route: Route, exclude: readonly M[] | undefined): OutboundError {
    const service = this.service
    if (this.size === 0) return new OutboundError(errorCodes.UNKNOWN_SERVICE, `no instance of service "${service}" is registered`, service, lane)
    const tried = exclude !== undefined && exclude.length > 0
    const considered = route.strict || lane === route.stable ? [lane] : [lane, route.stable]
    let ejected = 0
    for (const name of considered) ejected += this.lanes.get(name)?.ejected ?? 0
    if (ejected > 0 && !tried) {
      return new OutboundError(
        errorCodes.ALL_EJECTED,
        `every instance of "${service}" in lane "${considered.join('" or "')}" is ejected after connection failures`,
        service,
        lane
      )
    }
    const present = [...this.lanes.keys()].sort().join(', ')
    const why = tried ? 'no other instance to retry on' : route.strict ? 'the route is strict' : `no fallback in stable lane "${route.stable}"`
    return new OutboundError(errorCodes.NO_INSTANCE_IN_LANE, `no available instance of "${service}" in lane "${lane}" (${why}; lanes present: ${present})`, service, lane)
  }
}

function sameWeights (a: Record<string, number>, b: Record<string, number>): boolean {
  let n = 0
  for (const k in b) {
    if (a[k] !== b[k]) return false
    n++
  }
  for (const _ in a) n--
  return n === 0
}
