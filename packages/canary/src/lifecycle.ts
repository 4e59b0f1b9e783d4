// A canary's beginning and end, as a user follows them: it starts only with a candidate instance
// to judge, a rollback gives back the user's own RuleSet, a step says when a user rule leaves the
// candidate no traffic, and a promotion ends with the candidate as the stable lane and the old
// lane's instances to retire. Pure functions over RuleSets, and one discovery look-up.
import type { NacosClient } from '@flowtag/nacos'
import type { RuleSet } from '@flowtag/rules'
import { CanaryError, errorCodes } from './errors.ts'
import { laneCatalog, laneMembers } from './lane.ts'
import type { StepTarget } from './rollout.ts'
import type { CanarySpec } from './spec.ts'

/** Instance metadata key of an instance's lane (@flowtag/service registers it). */
const LANE_METADATA = 'version'

/**
 * Refuse a canary that has nothing to judge: no instance of `service` in the candidate lane, or,
 * for a lane canary, no service looked at (the RuleSet's, `services`, `convergence`, less
 * `exclude`) with an instance in the lane. Resolves with the services whose lanes the steps change.
 * @throws {CanaryError} `FLOWTAG_CANARY_NO_CANDIDATE` naming the service (or the services looked
 *   at), the lane and the lanes seen.
 */
export async function requireCandidate (nacos: NacosClient, spec: CanarySpec, rules?: RuleSet): Promise<string[]> {
  if (spec.service === undefined) {
    const looked = laneCatalog(rules, spec)
    const listed = new Map<string, Awaited<ReturnType<NacosClient['naming']['instances']>>>()
    for (const service of looked) listed.set(service, await nacos.naming.instances(service))
    const members = laneMembers(listed, spec.candidate).map((m) => m.service)
    if (members.length > 0) return members
    throw new CanaryError(errorCodes.NO_CANDIDATE, `@flowtag/canary: no service has an instance in the lane "${spec.candidate}" registered in Nacos (looked at: ${looked.length === 0 ? 'no service: the RuleSet declares none and the spec lists none in services' : looked.join(', ')}); start the lane's instances first`)
  }
  const instances = await nacos.naming.instances(spec.service)
  if (instances.some((i) => i.metadata[LANE_METADATA] === spec.candidate)) return [spec.service]
  const lanes = [...new Set(instances.map((i) => i.metadata[LANE_METADATA] ?? 'none'))].sort()
  throw new CanaryError(errorCodes.NO_CANDIDATE, `@flowtag/canary: no instance of "${spec.service}" in the candidate lane "${spec.candidate}" is registered in Nacos (${instances.length === 0 ? 'no instance at all' : `lanes seen: ${lanes.join(', ')}`}); start the candidate first`)
}

/**
 * The rule that decides every request before the split carrying the candidate's share (an
 * enabled rule with an empty `when`, whose lease has not run out, sending elsewhere), or
 * undefined when the share can flow. Such a rule makes a step wait for traffic that never comes
 * (a conditional rule to the candidate, a testers rule, brings only its own requests).
 */
export function decidesFirst (rs: RuleSet, candidate: string, now = Date.now()): string | undefined {
  for (const rule of rs.rules) {
    if (!rule.enabled) continue
    const catchAll = Object.keys(rule.when).length === 0
    const share = (rule.split !== undefined && (rule.split.weights[candidate] ?? 0) > 0) || (catchAll && rule.lane === candidate)
    if (share) return undefined
    const expired = rule.expiresAt !== undefined && new Date(rule.expiresAt).getTime() <= now
    if (!expired && catchAll) return rule.name
  }
  return undefined
}

/** The RuleSet as it was before the canary, at version `version`: what rollback and abort publish. */
export function restoredRuleSet (before: RuleSet, version: number): RuleSet {
  return { ...structuredClone(before), version }
}

/**
 * The promoted end, at version `version`: `candidate` is the service's stable lane (the old
 * stable lane is no longer declared, its weight entry dropped), and every split that names the
 * candidate sends it everything (rest: the candidate), so requests tagged with the old lane's
 * default no longer reach the old instances. A later canary's first step reuses such a split.
 */
export function promotedRuleSet (current: RuleSet, target: StepTarget, version: number): RuleSet {
  const rs = structuredClone(current)
  rs.version = version
  for (const service of new Set([...(target.service === undefined ? [] : [target.service]), ...(target.services ?? [])])) promoteIn(rs, service, target)
  for (const rule of rs.rules) {
    if (rule.split === undefined || !(target.candidate in rule.split.weights)) continue
    rule.split.weights = { [target.candidate]: 100 }
    rule.split.rest = target.candidate
  }
  return rs
}

/** Makes the candidate the stable lane of `service` in `rs` (in place). */
function promoteIn (rs: RuleSet, service: string, target: StepTarget): void {
  const lanes = rs.services[service]
  if (lanes === undefined) {
    rs.services[service] = { stable: target.candidate, candidates: [], strict: false }
  } else {
    lanes.stable = target.candidate
    lanes.candidates = lanes.candidates.filter((c) => {
      const name = typeof c === 'string' ? c : c.lane
      return name !== target.candidate && name !== target.stable
    })
    if (lanes.weights !== undefined) {
      delete lanes.weights[target.stable]
      if (Object.keys(lanes.weights).length === 0) delete lanes.weights
    }
  }
}

/**
 * What is left after a promotion: the old stable lane's instances of `services`, ready to retire
 * (`ip:port`; `service ip:port` when there are several services, as in a lane canary).
 * `service` is the canary's key (the service, or `lane:<lane>`).
 */
export function retireList (instances: ReadonlyArray<{ service: string, instance: string, lane: string }>, service: string, oldStable: string, services: readonly string[] = [service]): { service: string, lane: string, instances: string[] } {
  const of = new Set(services)
  const named = services.length > 1
  return { service, lane: oldStable, instances: instances.filter((i) => of.has(i.service) && i.lane === oldStable).map((i) => named ? `${i.service} ${i.instance}` : i.instance).sort() }
}
