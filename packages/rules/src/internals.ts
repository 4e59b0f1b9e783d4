/**
 * `@flowtag/rules/internals`: building blocks other flowtag packages share with the rule engine
 * (CIDR matching for the trust policy, the cookie reader, the split hash), kept off the root so
 * the root export is what a user writes rules with. Supported, but shaped by flowtag's own needs:
 * read the changelog before relying on them from outside.
 *
 * @module
 */
export { parseCidr, compileCidrs, matchIp, type Cidr } from './ip.ts'
export { cookieOf } from './facts.ts'
export { bucketOf, BUCKETS } from './hash.ts'
export { isCompiled } from './compile.ts'
