export { FlowTagService, createFlowTagService, type ServiceFetch, type Readiness } from './service.ts'
export { serviceOptionsSchema, type FlowTagServiceOptions, type NacosRulesOptions, type RuleStoreInput, type ServiceLogger } from './options.ts'
export { errorCodes, type ServiceErrorCode } from './errors.ts'
