import type { RuleSetInput } from '@flowtag/rules'

/** The demo's RuleSet at a given share of users in v2: testers always get v2, sticky by user id. */
export function canaryRuleSet (version: number, percentV2: number): RuleSetInput {
  return {
    version,
    description: `order-service and user-service v2 canary at ${percentV2}%`,
    user: { header: 'x-user-id' },
    services: {
      'order-service': { stable: 'v1', candidates: ['v2'] },
      'user-service': { stable: 'v1', candidates: ['v2'] }
    },
    rules: [
      { name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' },
      { name: 'canary', split: { key: { header: 'x-user-id' }, weights: { v2: percentV2 }, rest: 'v1' } }
    ],
    default: 'v1'
  }
}

export const RULES_DATA_ID = 'flowtag-rules.json'
export const RULES_GROUP = 'FLOWTAG'
