export { RulesError, errorCodes, type RulesErrorCode, type RuleIssue } from './errors.ts'
export {
  RuleSetSchema, RuleSchema, WhenSchema, SplitSchema, StringMatchSchema, KeySourceSchema, ServiceLanesSchema, LANE_PATTERN, RULES_VERSION_METADATA,
  ShadowRuleSetSchema, LeasedLaneSchema, ExpiresAtSchema, candidateLane, MirrorSchema, DEFAULT_MIRROR_METHODS,
  type RuleSet, type RuleSetInput, type Rule, type When, type Split, type StringMatch, type KeySource, type ServiceLanes,
  type ShadowRuleSet, type LeasedLane, type Mirror
} from './schema.ts'
export { checkLeases, setLease } from './leases.ts'
export { checkPublish, type PublishCheckOptions } from './publish-policy.ts'
export { lintRuleSet, type RuleSetWarning } from './lint.ts'
export { promoteShadow } from './shadow.ts'
export { parseRuleSet, validateRuleSet, MAX_DOCUMENT_BYTES } from './parse.ts'
export { compileRuleSet, type CompiledRuleSet, type Decision, type MirrorPlan } from './compile.ts'
export { evaluate, explain, type Explanation, type ExplainStep } from './evaluate.ts'
export type { Facts } from './facts.ts'
export { serviceLanes, type ServiceLaneInfo } from './services.ts'
export type { RuleSource } from './source.ts'
export { staticSource, type StaticSource } from './sources/static.ts'
export { fileSource, type FileSourceOptions } from './sources/file.ts'
export { nacosSource, type NacosConfigLike, type NacosSourceOptions } from './sources/nacos.ts'
export {
  RuleStore, createRuleStore,
  type RuleStoreOptions, type RuleStoreStats, type RulesLogger, type ChangeListener, type ErrorListener
} from './store.ts'
