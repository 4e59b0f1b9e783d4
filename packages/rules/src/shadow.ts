import { errorCodes, RulesError } from './errors.ts'
import type { RuleSet } from './schema.ts'

/**
 * The document that makes the shadow live: the shadow's rules, services, user and default,
 * no shadow left, and a version above both (so every process logs a step forward).
 * @throws {RulesError} FLOWTAG_RULES_INVALID when the document has no shadow
 */
export function promoteShadow (ruleSet: RuleSet): RuleSet {
  const shadow = ruleSet.shadow
  if (shadow === undefined) throw new RulesError(errorCodes.INVALID, 'the rule set has no shadow to promote', { issues: [{ path: 'shadow', message: 'absent' }] })
  const { $schema } = ruleSet
  return { ...($schema === undefined ? {} : { $schema }), ...structuredClone(shadow), version: Math.max(ruleSet.version, shadow.version) + 1 }
}
