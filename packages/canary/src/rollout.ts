// The RuleSets a canary publishes: the one in force with the candidate's share set to a step's
// weight, or with every route to the candidate removed (rollback). Pure functions over RuleSets.
import type { KeySource, RuleSet } from '@flowtag/rules'

/** Name of the split rule the controller adds when the RuleSet has none for the candidate. */
export const CANARY_RULE = 'flowtag-canary'

export interface StepTarget {
  /** The service of a one-service canary. */
  service?: string | undefined
  /** A lane canary: the lane's services (each lists the candidate). */
  services?: readonly string[] | undefined
  /** A lane canary's lane. */
  lane?: string | undefined
  candidate: string
  stable: string
  splitKey?: KeySource | undefined
}

const clone = (rs: RuleSet): RuleSet => structuredClone(rs)

/**
 * `current` with the candidate at `weight` % and version `version`: every split that names the
 * candidate gets the weight (the rest goes to its `rest` or stable lane); without one, a split
 * that sends everything to the stable lane (a promotion's end) takes the candidate; without
 * either, a split rule {@link CANARY_RULE} matching everything is appended. The service lists the candidate.
 */
export function stepRuleSet (current: RuleSet, target: StepTarget, weight: number, version: number): RuleSet {
  const rs = clone(current)
  rs.version = version
  declareCandidate(rs, target)
  let found = false
  for (const rule of rs.rules) {
    if (rule.split === undefined || !(target.candidate in rule.split.weights)) continue
    found = true
    rule.enabled = true
    rule.split.weights = { [target.candidate]: weight }
    rule.split.rest ??= target.stable
  }
  if (!found) {
    // A split that sends everything to the stable lane (a promoted canary's end, lifecycle.ts)
    // takes the candidate: a split appended after it would never see a request.
    for (const rule of rs.rules) {
      if (!rule.enabled || rule.split === undefined || !sendsAllTo(rule.split, target.stable)) continue
      found = true
      rule.split.weights = { [target.candidate]: weight }
      rule.split.rest = target.stable
    }
  }
  if (!found) {
    rs.rules.push({
      name: CANARY_RULE,
      description: `${target.service === undefined ? `lane canary of ${target.candidate}` : `canary of ${target.service}: ${target.candidate}`} against ${target.stable}`,
      enabled: true,
      when: {},
      split: {
        ...(target.splitKey === undefined ? {} : { key: target.splitKey }),
        weights: { [target.candidate]: weight },
        rest: target.stable
      }
    })
  }
  return rs
}

/**
 * `current` with no route left to the candidate, version `version`: splits keep the candidate at
 * 0 % (its share goes to their rest lane; a later canary's steps set it again, where removing it
 * left a catch-all split ahead of the rule a step appends), rules that send to it are disabled, a
 * default of it becomes stable, and no service weights it. Afterwards no request is decided into
 * the candidate lane.
 */
export function rollbackRuleSet (current: RuleSet, target: StepTarget, version: number): RuleSet {
  const rs = clone(current)
  rs.version = version
  rs.rules = rs.rules.filter((r) => r.name !== CANARY_RULE)
  for (const rule of rs.rules) {
    if (rule.lane === target.candidate) rule.enabled = false
    if (rule.split !== undefined && target.candidate in rule.split.weights) {
      rule.split.weights[target.candidate] = 0
      rule.split.rest ??= target.stable
    }
  }
  if (rs.default === target.candidate) rs.default = target.stable
  for (const s of Object.values(rs.services)) {
    if (s.weights !== undefined && target.candidate in s.weights) delete s.weights[target.candidate]
  }
  return rs
}

/** The candidate's share (%) in a RuleSet's splits (the largest), 0 when none routes to it. */
export function candidateWeight (rs: RuleSet, candidate: string): number {
  let w = 0
  for (const r of rs.rules) {
    if (r.enabled && r.split !== undefined) w = Math.max(w, r.split.weights[candidate] ?? 0)
    if (r.enabled && r.lane === candidate && Object.keys(r.when).length === 0) w = 100
  }
  return w
}

function sendsAllTo (split: { weights: Record<string, number>, rest?: string | undefined }, lane: string): boolean {
  const lanes = Object.entries(split.weights).filter(([, w]) => w > 0)
  return lanes.length === 0 ? split.rest === lane : lanes.length === 1 && lanes[0]![0] === lane && lanes[0]![1] === 100
}

function declareCandidate (rs: RuleSet, target: StepTarget): void {
  for (const service of [...(target.service === undefined ? [] : [target.service]), ...(target.services ?? [])]) {
    const s = rs.services[service]
    if (s === undefined) rs.services[service] = { stable: target.stable, candidates: [target.candidate], strict: false }
    else if (!s.candidates.includes(target.candidate) && s.stable !== target.candidate) s.candidates.push(target.candidate)
  }
}
