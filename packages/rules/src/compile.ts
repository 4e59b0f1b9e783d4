import { compileKey, type CompiledKey } from './facts.ts'
import { BUCKETS, saltSeed } from './hash.ts'
import { parseCidr, type Cidr } from './ip.ts'
import { buildRuleIndex, type RuleIndex } from './rule-index.ts'
import type { RuleSet, StringMatch } from './schema.ts'

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
  readonly enabled: boolean
  readonly conditions: readonly CompiledCondition[]
  readonly cidrs: readonly Cidr[] | undefined
  readonly users: ReadonlySet<string> | undefined
  readonly decision: Decision | undefined
  readonly split: CompiledSplit | undefined
}

const kCompiled = Symbol('flowtag.rules.compiled')

/** A RuleSet prepared for evaluate(): CIDRs parsed, lists as Sets, decisions pre-built, rules indexed. */
export interface CompiledRuleSet {
  readonly [kCompiled]: true
  readonly ruleSet: RuleSet
  readonly version: number
  readonly user: CompiledKey | undefined
  readonly rules: readonly CompiledRule[]
  readonly defaultDecision: Decision
  /** The distinct header/cookie/query keys the conditions read. */
  readonly keys: readonly CompiledKey[]
  /** Lookups from a request's facts to the rules it can match (see rule-index.ts). */
  readonly index: RuleIndex
}

function condition (key: CompiledKey, slot: number, m: StringMatch): CompiledCondition {
  if (m.equals !== undefined) return { key, slot, op: OP_EQUALS, value: m.equals, set: undefined, exists: true, text: `${key.text} equals ${JSON.stringify(m.equals)}` }
  if (m.in !== undefined) return { key, slot, op: OP_IN, value: '', set: new Set(m.in), exists: true, text: `${key.text} in [${m.in.length} values]` }
  if (m.prefix !== undefined) return { key, slot, op: OP_PREFIX, value: m.prefix, set: undefined, exists: true, text: `${key.text} starts with ${JSON.stringify(m.prefix)}` }
  return { key, slot, op: OP_EXISTS, value: '', set: undefined, exists: m.exists === true, text: `${key.text} ${m.exists === true ? 'is present' : 'is absent'}` }
}

function decision (tag: string, rule: string | undefined, reason: string): Decision {
  return Object.freeze(rule === undefined ? { tag, reason } : { tag, rule, reason })
}

const cache = new WeakMap<RuleSet, CompiledRuleSet>()

export function isCompiled (value: unknown): value is CompiledRuleSet {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kCompiled] === true
}

/**
 * Compile a validated RuleSet once (memoised per object). evaluate() accepts either form;
 * stores hand out the compiled one so the hot path does no lookups at all.
 */
export function compileRuleSet (ruleSet: RuleSet | CompiledRuleSet): CompiledRuleSet {
  if (isCompiled(ruleSet)) return ruleSet
  const hit = cache.get(ruleSet)
  if (hit !== undefined) return hit
  const user = ruleSet.user === undefined ? undefined : compileKey(ruleSet.user)
  const keys: CompiledKey[] = []
  const slots = new Map<string, number>()
  const slotOf = (key: CompiledKey): number => {
    let slot = slots.get(key.text)
    if (slot === undefined) {
      slot = keys.push(key) - 1
      slots.set(key.text, slot)
    }
    return slot
  }
  const add = (conditions: CompiledCondition[], key: CompiledKey, m: StringMatch) => conditions.push(condition(key, slotOf(key), m))
  const rules: CompiledRule[] = ruleSet.rules.map((r, index) => {
    const conditions: CompiledCondition[] = []
    for (const [name, m] of Object.entries(r.when.headers ?? {})) add(conditions, compileKey({ header: name }), m)
    for (const [name, m] of Object.entries(r.when.cookies ?? {})) add(conditions, compileKey({ cookie: name }), m)
    for (const [name, m] of Object.entries(r.when.query ?? {})) add(conditions, compileKey({ query: name }), m)
    const cidrs = r.when.ip?.map((text) => {
      const c = parseCidr(text)
      if (c === undefined) throw new TypeError(`rules.${index}.when.ip: invalid CIDR ${JSON.stringify(text)} (validate the RuleSet first)`)
      return c
    })
    let split: CompiledSplit | undefined
    if (r.split !== undefined) {
      let end = 0
      const ranges: CompiledRange[] = []
      for (const [lane, w] of Object.entries(r.split.weights)) {
        const size = Math.round(w * 100)
        end = Math.min(BUCKETS, end + size)
        ranges.push({ lane, end, decision: decision(lane, r.name, `rule "${r.name}" split: ${w}% to ${lane}`) })
      }
      split = {
        key: r.split.key === undefined ? user : compileKey(r.split.key),
        salt: r.split.salt ?? r.name,
        seed: saltSeed(r.split.salt ?? r.name),
        ranges,
        rest: r.split.rest === undefined ? undefined : decision(r.split.rest, r.name, `rule "${r.name}" split: rest to ${r.split.rest}`)
      }
    }
    return {
      name: r.name,
      index,
      enabled: r.enabled,
      conditions,
      cidrs,
      users: r.when.users === undefined ? undefined : new Set(r.when.users),
      decision: r.lane === undefined ? undefined : decision(r.lane, r.name, `rule "${r.name}" matched`),
      split
    }
  })
  const compiled: CompiledRuleSet = Object.freeze({
    [kCompiled]: true as const,
    ruleSet,
    version: ruleSet.version,
    user,
    rules,
    defaultDecision: decision(ruleSet.default, undefined, 'no rule matched: default lane'),
    keys,
    index: buildRuleIndex(rules, user !== undefined)
  })
  cache.set(ruleSet, compiled)
  return compiled
}
