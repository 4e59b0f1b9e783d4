// The compiled shapes of a RuleSet (what compile.ts builds, rule-index.ts indexes and evaluate.ts
// walks), apart from the code that builds them, so those modules import one way: compile.ts and
// rule-index.ts both depend on this file, never on each other's.
import type { CompiledKey } from './facts.ts'
import type { Cidr } from './ip.ts'

/** The outcome of evaluating a RuleSet: the lane, the rule that chose it, and why. */
export interface Decision {
  readonly tag: string
  readonly rule?: string
  readonly reason: string
}

export const OP_EQUALS = 0
export const OP_IN = 1
export const OP_PREFIX = 2
export const OP_EXISTS = 3

export interface CompiledCondition {
  readonly key: CompiledKey
  /** Index of `key` in the rule set's distinct keys: each is read at most once per evaluate(). */
  readonly slot: number
  readonly op: 0 | 1 | 2 | 3
  readonly value: string
  readonly set: ReadonlySet<string> | undefined
  readonly exists: boolean
  readonly text: string
}

export interface CompiledRange {
  readonly lane: string
  /** Buckets [previous end, end) belong to this lane. */
  readonly end: number
  readonly decision: Decision
}

export interface CompiledSplit {
  readonly key: CompiledKey | undefined
  readonly salt: string
  readonly seed: number
  readonly ranges: readonly CompiledRange[]
  readonly rest: Decision | undefined
}

export interface CompiledRule {
  readonly name: string
  readonly index: number
  /** Enabled in the document and its lease (if any) not run out at compile time. */
  readonly enabled: boolean
  /** Its lease had run out when this set was compiled (see `expiresAt`). */
  readonly expired: boolean
  /** Lease end in ms since the epoch; Infinity without a lease. */
  readonly expiresAt: number
  readonly conditions: readonly CompiledCondition[]
  readonly cidrs: readonly Cidr[] | undefined
  readonly users: ReadonlySet<string> | undefined
  readonly decision: Decision | undefined
  readonly split: CompiledSplit | undefined
}

/** A rule's or a service's mirror, compiled: which requests are copied (as shadows) into `lane`. */
export interface MirrorPlan {
  readonly lane: string
  /** 0..100: the share of eligible requests copied, one random draw per request. */
  readonly percent: number
  /** Upper-case HTTP methods that may be copied. */
  readonly methods: ReadonlySet<string>
}

/** A service's lanes as @flowtag/outbound needs them. */
export interface ServiceLaneInfo {
  stable: string
  candidates: string[]
  strict: boolean
  weights?: Record<string, number>
  /** Candidate lanes whose lease has run out: requests tagged with one go to `stable`. */
  expired?: string[]
  /** The service's mirror, when its entry has one. */
  mirror?: MirrorPlan
}
