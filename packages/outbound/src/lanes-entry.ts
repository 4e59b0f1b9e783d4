// `@flowtag/outbound/lanes`: the lane rules, warm-up, retry budgets and outlier detection,
// transport-neutral, for other transports' pickers (the @flowtag/grpc balancer) to route exactly
// as the HTTP dispatcher does.
export { LaneIndex, resolveRoute, type IndexWarmup, type Lane, type LaneConfig, type LanesResolver, type MemberInfo, type Route } from './lanes.ts'
export { OutlierDetector, freshOutlierState, type OutlierHost, type OutlierPolicy, type OutlierState } from './outlier.ts'
export { DEFAULT_WARMUP, STARTED_AT_METADATA, followWarmupState, freshWarmupState, warmupFactor, warmupRefreshMs, type WarmupPolicy, type WarmupState } from './warmup.ts'
export { DEFAULT_RETRY_BUDGET, RetryBudget, RetryBudgets, type RetryBudgetPolicy } from './retry-budget.ts'
export { policiesFor, retryBudgetSchema, servicePoliciesSchema, warmupSchema, type Policies, type ServicePolicies } from './policies.ts'
export { callTargets, CONSUMER_ROLE, eligible, instanceKey, laneOf, ROLE_METADATA, takesCalls, type Discovery, type Instance, type ServiceChange } from './discovery.ts'
export { OutboundError, errorCodes, type OutboundErrorCode } from './errors.ts'
export {
  laneRoutingSchema, discoverySchema, lanesResolverSchema, outlierSchema, routingLoggerSchema, ejectionProblem, stderrLoggerOf, warnDeprecatedOption, ms,
  type LaneRoutingOptions, type RoutingLogger
} from './routing-options.ts'
