import { compileRuleSet, type CompiledRuleSet } from './compile.ts'
import type { ServiceLaneInfo } from './compiled.ts'
import type { RuleSet } from './schema.ts'

export type { ServiceLaneInfo }

/**
 * The lanes declared for `service`, or undefined when the rule set does not name it. Leased
 * candidates whose lease has run out are left out of `candidates` and `weights` and listed in
 * `expired`. The result is shared and frozen (built at compile time): a Map lookup per call.
 */
export function serviceLanes (ruleSet: RuleSet | CompiledRuleSet | undefined, service: string): ServiceLaneInfo | undefined {
  if (ruleSet === undefined) return undefined
  return compileRuleSet(ruleSet).services.get(service)
}
