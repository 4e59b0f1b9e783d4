export { FlowtagError, isFlowtagError, type FlowtagErrorOptions } from './flowtag-error.ts'
export { badOption, badOptionMessage, fieldOf, type IssueList } from './bad-option.ts'
