// A canary's beginning and end, as a user follows them: it starts only with a candidate instance
// to judge, a rollback gives back the user's own RuleSet, a step says when a user rule leaves the
// candidate no traffic, and a promotion ends with the candidate as the stable lane and the old
// lane's instances to retire. Pure functions over RuleSets, and one discovery look-up.
import type { NacosClient } from '@flowtag/nacos'
import type { RuleSet } from '@flowtag/rules'
import { CanaryError, errorCodes } from './errors.ts'
import type { StepTarget } from './rollout.ts'

/** Instance metadata key of an instance's lane (@flowtag/service registers it). */
const LANE_METADATA = 'version'

/**
 * Refuse a canary that has nothing to judge: no instance of `service` in the candidate lane.
 * @throws {CanaryError} `FLOWTAG_CANARY_NO_CANDIDATE` naming the service, the lane and the lanes it has.
 */
export async function requireCandidate (nacos: NacosClient, spec: Pick<StepTarget, 'service' | 'candidate'>): Promise<void> {
  const instances = await nacos.naming.instances(spec.service)
  if (instances.some((i) => i.metadata[LANE_METADATA] === spec.candidate)) return
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
  const lanes = rs.services[target.service]
  if (lanes === undefined) {
    rs.services[target.service] = { stable: target.candidate, candidates: [], strict: false }
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
  for (const rule of rs.rules) {
    if (rule.split === undefined || !(target.candidate in rule.split.weights)) continue
    rule.split.weights = { [target.candidate]: 100 }
    rule.split.rest = target.candidate
  }
  return rs
}

/** What is left after a promotion: the old stable lane's instances (`ip:port`), ready to retire. */
export function retireList (instances: ReadonlyArray<{ service: string, instance: string, lane: string }>, service: string, oldStable: string): { service: string, lane: string, instances: string[] } {
  return { service, lane: oldStable, instances: instances.filter((i) => i.service === service && i.lane === oldStable).map((i) => i.instance).sort() }
}
