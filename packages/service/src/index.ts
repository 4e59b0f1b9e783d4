export { FlowTagService, createFlowTagService, RULES_VERSION_METADATA, type ServiceFetch, type Readiness } from './service.ts'
export { ServiceMetrics, LANE_ATTRIBUTE, VERSION_ATTRIBUTE, type ServedRequest } from './metrics.ts'
export { serviceOptionsSchema, validateServiceOptions, type FlowTagServiceOptions, type NacosRulesOptions, type RuleStoreInput, type ServiceLogger } from './options.ts'
export { errorCodes, type ServiceErrorCode } from './errors.ts'
