// `@flowtag/outbound/lanes`: the lane rules and outlier detection, transport-neutral, for other
// transports' pickers (the @flowtag/grpc balancer) to route exactly as the HTTP dispatcher does.
export { LaneIndex, resolveRoute, type Lane, type LaneConfig, type LanesResolver, type MemberInfo, type Route } from './lanes.ts'
export { OutlierDetector, freshOutlierState, type OutlierHost, type OutlierPolicy, type OutlierState } from './outlier.ts'
export { eligible, instanceKey, laneOf, type Discovery, type Instance, type ServiceChange } from './discovery.ts'
export { OutboundError, errorCodes, type OutboundErrorCode } from './errors.ts'
