import { isCompiled, type CompiledRuleSet } from './compile.ts'
import type { RuleSet } from './schema.ts'

/** A service's lanes as @flowtag/outbound needs them. */
export interface ServiceLaneInfo {
  stable: string
  candidates: string[]
  strict: boolean
  weights?: Record<string, number>
}

/** The lanes declared for `service`, or undefined when the rule set does not name it. */
export function serviceLanes (ruleSet: RuleSet | CompiledRuleSet | undefined, service: string): ServiceLaneInfo | undefined {
  if (ruleSet === undefined) return undefined
  const rs = isCompiled(ruleSet) ? ruleSet.ruleSet : ruleSet
  if (!Object.hasOwn(rs.services, service)) return undefined
  const s = rs.services[service]!
  return s.weights === undefined
    ? { stable: s.stable, candidates: s.candidates, strict: s.strict }
    : { stable: s.stable, candidates: s.candidates, strict: s.strict, weights: s.weights }
}
