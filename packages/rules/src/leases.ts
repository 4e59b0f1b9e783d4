// Publish-time checks and edits of leases (`expiresAt`). Loading never checks the clock: a
// stored document whose lease ran out still loads and the lapsed parts simply stop matching.
import { errorCodes, RulesError, type RuleIssue } from './errors.ts'
import { candidateLane, type RuleSet, type ShadowRuleSet } from './schema.ts'

export function lapsed (doc: RuleSet | ShadowRuleSet, now: number, prefix: string, out: RuleIssue[]): void {
  doc.rules.forEach((r, i) => {
    if (r.expiresAt !== undefined && Date.parse(r.expiresAt) <= now) {
      out.push({ path: `${prefix}rules.${i}.expiresAt`, message: `lease of rule "${r.name}" ran out at ${r.expiresAt}` })
    }
  })
  for (const [service, s] of Object.entries(doc.services)) {
    s.candidates.forEach((c, i) => {
      if (typeof c !== 'string' && Date.parse(c.expiresAt) <= now) {
        out.push({ path: `${prefix}services.${service}.candidates.${i}.expiresAt`, message: `lease of lane "${c.lane}" ran out at ${c.expiresAt}` })
      }
    })
  }
}

/**
 * Refuse a document whose leases (live or shadow) end at or before `now` (ms, default
 * `Date.now()`): publishing it would route nothing the author meant to. Call it before
 * publishing, not when loading.
 * @throws {RulesError} FLOWTAG_RULES_LEASE_EXPIRED, `issues` naming each `...expiresAt` field
 */
export function checkLeases (ruleSet: RuleSet, now: number = Date.now()): void {
  const issues: RuleIssue[] = []
  lapsed(ruleSet, now, '', issues)
  if (ruleSet.shadow !== undefined) lapsed(ruleSet.shadow, now, 'shadow.', issues)
  if (issues.length === 0) return
  const at = new Date(now).toISOString()
  throw new RulesError(errorCodes.LEASE_EXPIRED, `lease already ran out at publish time (${at}): ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues })
}

/**
 * Renew (`expiresAt` an RFC 3339 string) or clear (`undefined`) the lease of a rule (`target`
 * = its name) or of a service's candidate lane (`target` = `<service>:<lane>`). Returns a new
 * document with `version` + 1; the input is not changed.
 * @throws {RulesError} FLOWTAG_RULES_INVALID when no such rule or candidate exists
 */
export function setLease<T extends RuleSet | ShadowRuleSet> (ruleSet: T, target: string, expiresAt: string | undefined): T {
  const doc = structuredClone(ruleSet)
  doc.version = ruleSet.version + 1
  const colon = target.indexOf(':')
  const rule = doc.rules.find((r) => r.name === target)
  if (rule !== undefined) {
    if (expiresAt === undefined) delete rule.expiresAt
    else rule.expiresAt = expiresAt
    return doc
  }
  if (colon > 0) {
    const s = doc.services[target.slice(0, colon)]
    const lane = target.slice(colon + 1)
    const i = s?.candidates.findIndex((c) => candidateLane(c) === lane) ?? -1
    if (s !== undefined && i >= 0) {
      s.candidates[i] = expiresAt === undefined ? lane : { lane, expiresAt }
      return doc
    }
  }
  throw new RulesError(errorCodes.INVALID, `no rule named "${target}" and no candidate lane "<service>:<lane>" matching it`, { issues: [{ path: '(root)', message: `nothing named ${target}` }] })
}
