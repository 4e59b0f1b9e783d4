import { compileRuleSet, type CompiledRuleSet } from './compile.ts'
import type { RuleSet } from './schema.ts'

/** A service's lanes as @flowtag/outbound needs them. */
export interface ServiceLaneInfo {
  stable: string
  candidates: string[]
  strict: boolean
  weights?: Record<string, number>
  /** Candidate lanes whose lease has run out: requests tagged with one go to `stable`. */
  expired?: string[]
}

/**
 * The lanes declared for `service`, or undefined when the rule set does not name it. Leased
 * candidates whose lease has run out are left out of `candidates` and `weights` and listed in
 * `expired`. The result is shared and frozen (built at compile time): a Map lookup per call.
 */
export function serviceLanes (ruleSet: RuleSet | CompiledRuleSet | undefined, service: string): ServiceLaneInfo | undefined {
  if (ruleSet === undefined) return undefined
  return compileRuleSet(ruleSet).services.get(service)
}
