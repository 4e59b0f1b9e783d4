/**
 * `@flowtag/canary/internals`: the controller's building blocks that tests and flowtag's own
 * apps reach for (the RuleSet reader and writer the controller uses, the canary rule's name and
 * weight, the scrape arithmetic, the state's data ids), kept off the root so the root is what a
 * user runs a canary with. Supported, but shaped by flowtag's own needs: read the changelog
 * before relying on them from outside.
 *
 * @module
 */
export { readRules, publishRules } from './controller.ts'
export { wilsonLower } from './judge.ts'
export { candidateWeight, CANARY_RULE } from './rollout.ts'
export { laneWindow, figuresFromText } from './scrape.ts'
export { stateDataId, commandDataId, TERMINAL } from './state.ts'
export { quantile, summarize } from './window.ts'
