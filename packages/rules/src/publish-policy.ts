// The one publish policy: what `flowtag rules publish`, `flowtag-rules publish|lease|promote` and
// the canary controller check before a RuleSet replaces the one in force.
import { errorCodes, RulesError, type RuleIssue } from './errors.ts'
import { lapsed } from './leases.ts'
import type { RuleSet } from './schema.ts'

export interface PublishCheckOptions {
  /** The clock leases are judged by, ms epoch. @default Date.now() */
  now?: number
  /** Publish over a version that is not above the one in force, or over an invalid document. @default false */
  force?: boolean
  /** Why the document in force does not parse (instances keep their last good set): replacing it needs `force`. */
  currentInvalid?: string
}

/**
 * Refuse a RuleSet that must not replace `current` (the one in force; undefined when there is none):
 * - a lease (live or shadow) that has run out at `now` and is not already in force as it is
 *   (a lapsed lease carried over unchanged routes nothing new; a new or changed one is a mistake):
 *   FLOWTAG_RULES_LEASE_EXPIRED, not overridden by `force` (renew the lease or remove it);
 * - a version not above the one in force (instances would ignore it, or a stale file would undo
 *   newer rules), or an invalid document in force: FLOWTAG_RULES_PUBLISH_REFUSED unless `force`.
 * @throws {RulesError} with `issues` naming the fields (`version`, `...expiresAt`)
 */
export function checkPublish (next: RuleSet, current: RuleSet | undefined, options: PublishCheckOptions = {}): void {
  const now = options.now ?? Date.now()
  const carried = new Set<string>()
  if (current !== undefined) {
    const before: RuleIssue[] = []
    lapsed(current, now, '', before)
    if (current.shadow !== undefined) lapsed(current.shadow, now, 'shadow.', before)
    for (const i of before) carried.add(i.message)
  }
  const expired: RuleIssue[] = []
  lapsed(next, now, '', expired)
  if (next.shadow !== undefined) lapsed(next.shadow, now, 'shadow.', expired)
  // The message names the rule or lane and its expiresAt: the same message is the same lease.
  const fresh = expired.filter((i) => !carried.has(i.message))
  if (fresh.length > 0) {
    const at = new Date(now).toISOString()
    throw new RulesError(errorCodes.LEASE_EXPIRED, `lease already ran out at publish time (${at}): ${fresh.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues: fresh })
  }
  if (options.force === true) return
  if (options.currentInvalid !== undefined) {
    throw new RulesError(errorCodes.PUBLISH_REFUSED, `the document in force is invalid (${options.currentInvalid}); instances keep their last good RuleSet. Pass --force (force: true) to replace it`, {
      issues: [{ path: '', message: `the document in force is invalid: ${options.currentInvalid}; publish with --force to replace it` }]
    })
  }
  if (current !== undefined && next.version <= current.version) {
    throw new RulesError(errorCodes.PUBLISH_REFUSED, `version ${next.version} is not above the one in force (${current.version}); bump it or pass --force (force: true)`, {
      issues: [{ path: 'version', message: `${next.version} is not above ${current.version}, the version in force: bump it, or publish with --force` }]
    })
  }
}
