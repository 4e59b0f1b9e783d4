export { FlowtagDispatcher, type ServiceSnapshot, type LaneSnapshot } from './dispatcher.ts'
export { OutboundError, errorCodes, type OutboundErrorCode } from './errors.ts'
export { outboundOptionsSchema, type OutboundOptions, type LaneConfig, type LanesResolver } from './options.ts'
export { AliasTable } from './alias-table.ts'
