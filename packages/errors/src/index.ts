export { FlowtagError, isFlowtagError, type FlowtagErrorOptions } from './flowtag-error.ts'
export { badOptionMessage, fieldOf, optionErrorMessage, type IssueList } from './bad-option.ts'
