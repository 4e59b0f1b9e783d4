export { FlowtagError, isFlowtagError, type FlowtagErrorOptions } from './flowtag-error.ts'
export { badOption, badOptionMessage, describeBadOption, fieldOf, optionErrorMessage, type BadOption, type DescribeOptions, type Issue, type IssueList } from './bad-option.ts'
