export { waitFor, type Held } from './wait-for.ts'
export { unique } from './unique.ts'
export { freePort, listenOnLoopback } from './ports.ts'
export { startNode, runNode, exitOf, stopChild, type ChildOptions, type ChildResult, type Teardown } from './child.ts'
