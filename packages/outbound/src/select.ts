// Which instance serves a request: the tag's lane, else the stable lane (unless strict);
// untagged traffic follows the service's lane weights when there are any, else goes to stable.
import { AliasTable } from './alias-table.ts'
import { OutboundError } from './errors.ts'
import type { Member, ServiceTable, WeightedTable } from './service-table.ts'

export interface Route {
  stable: string
  strict: boolean
  weights: Record<string, number> | undefined
}

/**
 * Pick a member for `tag` (undefined for untagged traffic). Throws a coded OutboundError when
 * nothing can serve it. `exclude` (retries only) lists members already tried; that path is O(n).
 */
export function select(table: ServiceTable, tag: string | undefined, route: Route, exclude?: readonly Member[]): Member {
  let lane = tag
  if (lane === undefined) {
    if (route.weights === undefined) lane = route.stable
    else if (exclude !== undefined && exclude.length > 0) lane = (exclude[exclude.length - 1] as Member).lane
    else {
      const picked = weightedTable(table, route).table?.pick()
      if (typeof picked === 'object') return picked
      // No positive weight: the stable lane; else a share no instance can serve.
      lane = picked ?? route.stable
    }
  }
  const first = pickIn(table, lane, exclude)
  if (first !== undefined) return first
  if (lane !== route.stable && !route.strict) {
    const fallback = pickIn(table, route.stable, exclude)
    if (fallback !== undefined) return fallback
  }
  throw noInstance(table, lane, route, exclude)
}

function pickIn(table: ServiceTable, name: string, exclude: readonly Member[] | undefined): Member | undefined {
  const lane = table.lanes.get(name)
  if (lane === undefined || lane.table === null) return undefined
  if (exclude === undefined || exclude.length === 0) return lane.table.pick()
  // Retry path: a weighted pick among the pickable members not tried yet.
  const items = lane.table.items
  let total = 0
  for (const m of items) if (!exclude.includes(m)) total += m.instance.weight
  if (total === 0) return undefined
  let r = Math.random() * total
  let last: Member | undefined
  for (const m of items) {
    if (exclude.includes(m)) continue
    last = m
    r -= m.instance.weight
    if (r < 0) return m
  }
  return last
}

function weightedTable(table: ServiceTable, route: Route): WeightedTable {
  const weights = route.weights as Record<string, number>
  const wt = table.weighted
  if (
    wt !== null &&
    wt.version === table.version &&
    wt.stable === route.stable &&
    wt.strict === route.strict &&
    (wt.source === weights || sameWeights(wt.source, weights))
  ) {
    return wt
  }
  return (table.weighted = buildWeighted(table, weights, route))
}

/** One alias table over every instance untagged traffic can reach, weighted lane share × instance share. */
function buildWeighted(table: ServiceTable, weights: Record<string, number>, route: Route): WeightedTable {
  const shares = new Map<Member | string, number>()
  const add = (item: Member | string, w: number) => shares.set(item, (shares.get(item) ?? 0) + w)
  const spread = (lane: string, w: number): boolean => {
    const t = table.lanes.get(lane)?.table
    if (t === undefined || t === null) return false
    let total = 0
    for (const m of t.items) total += m.instance.weight
    for (const m of t.items) add(m, (w * m.instance.weight) / total)
    return true
  }
  for (const [lane, w] of Object.entries(weights)) {
    if (!Number.isFinite(w) || w <= 0) continue
    // An empty lane's share falls back to stable, as a tagged request would (unless strict).
    if (!spread(lane, w) && (route.strict || lane === route.stable || !spread(route.stable, w))) add(lane, w)
  }
  const items = [...shares.keys()]
  return {
    source: weights,
    version: table.version,
    stable: route.stable,
    strict: route.strict,
    table: items.length === 0 ? null : new AliasTable(items, [...shares.values()])
  }
}

function sameWeights(a: Record<string, number>, b: Record<string, number>): boolean {
  let n = 0
  for (const k in b) {
    if (a[k] !== b[k]) return false
    n++
  }
  for (const _ in a) n--
  return n === 0
}

function noInstance(table: ServiceTable, lane: string, route: Route, exclude: readonly Member[] | undefined): OutboundError {
  const service = table.service
  if (table.members.size === 0) {
    return new OutboundError('FLOWTAG_OUTBOUND_UNKNOWN_SERVICE', `no instance of service "${service}" is registered`, service, lane)
  }
  const tried = exclude !== undefined && exclude.length > 0
  const considered = route.strict || lane === route.stable ? [lane] : [lane, route.stable]
  let ejected = 0
  for (const name of considered) ejected += table.lanes.get(name)?.ejected ?? 0
  if (ejected > 0 && !tried) {
    return new OutboundError(
      'FLOWTAG_OUTBOUND_ALL_EJECTED',
      `every instance of "${service}" in lane "${considered.join('" or "')}" is ejected after connection failures`,
      service,
      lane
    )
  }
  const present = [...table.lanes.keys()].sort().join(', ')
  const why = tried ? 'no other instance to retry on' : route.strict ? 'the route is strict' : `no fallback in stable lane "${route.stable}"`
  return new OutboundError(
    'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE',
    `no available instance of "${service}" in lane "${lane}" (${why}; lanes present: ${present})`,
    service,
    lane
  )
}
