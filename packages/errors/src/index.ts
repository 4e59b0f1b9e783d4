export { FlowTagError, isFlowTagError, type FlowTagErrorOptions } from './flowtag-error.ts'
/** @deprecated Old casing of `FlowTagError`, `isFlowTagError` and `FlowTagErrorOptions` (the same class, function and type); removed in the next minor version. */
export { FlowtagError, isFlowtagError, type FlowtagErrorOptions } from './flowtag-error.ts'
export { badOption, badOptionMessage, describeBadOption, fieldOf, optionErrorMessage, type BadOption, type DescribeOptions, type Issue, type IssueList } from './bad-option.ts'
