import { BUCKETS } from './hash.ts'
import { candidateLane, type RuleSet, type ShadowRuleSet } from './schema.ts'

/** Something a valid RuleSet does that is rarely what its author meant; never a reason to refuse it. */
export interface RuleSetWarning {
  /** Dotted path in the document, as the validation issues give it (`rules.2.split`). */
  path: string
  message: string
}

/** A weight owns `weight * BUCKETS / 100` hash buckets: the finest step a split can express. */
const STEP = 100 / BUCKETS

/**
 * Warnings about a valid RuleSet, in document order (shadow set included, under `shadow.`):
 * - a split with no key (neither `split.key` nor the top-level `user`): every request is split
 *   at random, so one user's requests go to different lanes;
 * - a weight finer than a split can express (0.01%: one of 10,000 buckets): it is rounded;
 * - a lane a rule sends requests to that no entry of `services` declares (when `services` names
 *   any): services the set names send that lane's requests to their stable lane.
 * `flowtag-rules validate` and `publish` print them and go on.
 */
export function lintRuleSet (rs: RuleSet): RuleSetWarning[] {
  const out = lint(rs, '')
  if (rs.shadow !== undefined) out.push(...lint(rs.shadow, 'shadow.'))
  return out
}

function lint (rs: RuleSet | ShadowRuleSet, prefix: string): RuleSetWarning[] {
  const out: RuleSetWarning[] = []
  const declared = new Set<string>()
  for (const s of Object.values(rs.services)) {
    declared.add(s.stable)
    for (const c of s.candidates) declared.add(candidateLane(c))
  }
  const undeclared = (path: string, lane: string): void => {
    if (declared.size === 0 || declared.has(lane)) return
    out.push({ path: prefix + path, message: `lane "${lane}" is not declared by any service in "services": the services it names send these requests to their stable lane` })
  }
  const fine = (path: string, weight: number): void => {
    const steps = weight / STEP
    if (Math.abs(steps - Math.round(steps)) > 1e-9) {
      out.push({ path: prefix + path, message: `weight ${weight} is finer than a split can express (${STEP}%): it counts as ${Math.round(steps) * STEP}%` })
    }
  }
  rs.rules.forEach((rule, i) => {
    if (!rule.enabled) return
    const at = `rules.${i}`
    if (rule.lane !== undefined) undeclared(`${at}.lane`, rule.lane)
    if (rule.split === undefined) return
    if (rule.split.key === undefined && rs.user === undefined) {
      out.push({ path: `${prefix}${at}.split`, message: 'no key (neither split.key nor the top-level "user"): each request is split at random, so one user\'s requests go to different lanes' })
    }
    for (const [lane, weight] of Object.entries(rule.split.weights)) {
      fine(`${at}.split.weights.${lane}`, weight)
      undeclared(`${at}.split.weights.${lane}`, lane)
    }
    if (rule.split.rest !== undefined) undeclared(`${at}.split.rest`, rule.split.rest)
  })
  return out
}
