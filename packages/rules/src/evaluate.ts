import {
  compileRuleSet, OP_EQUALS, OP_IN, OP_PREFIX,
  type CompiledCondition, type CompiledRule, type CompiledRuleSet, type Decision
} from './compile.ts'
import { readKey, type Facts } from './facts.ts'
import { BUCKETS, bucketFromSeed } from './hash.ts'
import { cidrContains, parseIpInto } from './ip.ts'
import type { RuleSet } from './schema.ts'

function conditionHolds (c: CompiledCondition, value: string | undefined): boolean {
  if (value === undefined) return c.op === 3 && !c.exists
  switch (c.op) {
    case OP_EQUALS: return value === c.value
    case OP_IN: return c.set!.has(value)
    case OP_PREFIX: return value.startsWith(c.value)
    default: return c.exists
  }
}

// evaluate() is synchronous, so module-level scratch space is safe: the client address, and
// the values of the rule set's distinct keys, each read at most once per call (`seen` holds
// the call number that filled a slot, so nothing needs clearing between calls).
const addr = new Uint32Array(4)
let values: Array<string | undefined> = []
let seen = new Float64Array(0)
let call = 0

function splitBucket (rule: CompiledRule, facts: Facts): number {
  const split = rule.split!
  const key = split.key === undefined ? undefined : readKey(facts, split.key)
  if (key === undefined) return Math.floor((facts.random ?? Math.random)() * BUCKETS) % BUCKETS
  return bucketFromSeed(key, split.seed)
}

function splitDecision (rule: CompiledRule, bucket: number): Decision | undefined {
  const ranges = rule.split!.ranges
  for (let i = 0; i < ranges.length; i++) if (bucket < ranges[i]!.end) return ranges[i]!.decision
  return rule.split!.rest
}

/**
 * Decide a request's lane: rules in order, first match wins; a split that leaves a request
 * outside every weight (and has no `rest`) falls through to the next rule. Pure apart from
 * randomness for splits without a key; does no parsing of the rule set and allocates
 * nothing on the common paths (decisions are pre-built and shared, frozen).
 */
export function evaluate (ruleSet: RuleSet | CompiledRuleSet, facts: Facts): Decision {
  const c = compileRuleSet(ruleSet)
  const rules = c.rules
  if (seen.length < c.keys.length) {
    seen = new Float64Array(c.keys.length * 2)
    values = new Array<string | undefined>(c.keys.length * 2)
  }
  const id = ++call
  let family = -1 // client address not parsed yet
  outer: for (let r = 0; r < rules.length; r++) {
    const rule = rules[r]!
    if (!rule.enabled) continue
    const conds = rule.conditions
    for (let i = 0; i < conds.length; i++) {
      const cond = conds[i]!
      const slot = cond.slot
      if (seen[slot] !== id) {
        values[slot] = readKey(facts, cond.key)
        seen[slot] = id
      }
      if (!conditionHolds(cond, values[slot])) continue outer
    }
    if (rule.cidrs !== undefined) {
      if (family === -1) family = typeof facts.ip === 'string' && facts.ip.length <= 64 ? parseIpInto(facts.ip, addr) : 0
      if (family === 0) continue
      let inside = false
      for (let i = 0; i < rule.cidrs.length; i++) if (cidrContains(rule.cidrs[i]!, addr)) { inside = true; break }
      if (!inside) continue
    }
    if (rule.users !== undefined) {
      const user = readKey(facts, c.user!)
      if (user === undefined || !rule.users.has(user)) continue
    }
    if (rule.decision !== undefined) return rule.decision
    const d = splitDecision(rule, splitBucket(rule, facts))
    if (d !== undefined) return d
  }
  return c.defaultDecision
}

/** One rule's verdict in an explanation. */
export interface ExplainStep {
  rule: string
  index: number
  matched: boolean
  detail: string
}

export interface Explanation {
  decision: Decision
  version: number
  /** Index of the deciding rule, or -1 when the default lane applied. */
  index: number
  /** For splits: the bucket (0..9999) and whether it came from a sticky key or at random. */
  bucket?: number
  key?: 'sticky' | 'random'
  steps: ExplainStep[]
}

/** Like evaluate(), but records why each rule matched or not. Slower; for tools and debugging. */
export function explain (ruleSet: RuleSet | CompiledRuleSet, facts: Facts): Explanation {
  const c = compileRuleSet(ruleSet)
  const steps: ExplainStep[] = []
  const scratch = new Uint32Array(4)
  const family = typeof facts.ip === 'string' && facts.ip.length <= 64 ? parseIpInto(facts.ip, scratch) : 0
  for (const rule of c.rules) {
    const step = (matched: boolean, detail: string) => steps.push({ rule: rule.name, index: rule.index, matched, detail })
    if (!rule.enabled) { step(false, 'disabled'); continue }
    const failed = rule.conditions.find((cond) => !conditionHolds(cond, readKey(facts, cond.key)))
    if (failed !== undefined) {
      const got = readKey(facts, failed.key)
      step(false, `${failed.text}: ${got === undefined ? 'absent' : `got ${JSON.stringify(got.slice(0, 80))}`}`)
      continue
    }
    const why: string[] = rule.conditions.map((cond) => cond.text)
    if (rule.cidrs !== undefined) {
      const hit = family === 0 ? undefined : rule.cidrs.find((cidr) => cidrContains(cidr, scratch))
      if (hit === undefined) { step(false, `client ip ${facts.ip === undefined ? 'unknown' : JSON.stringify(String(facts.ip).slice(0, 64))} not in ${rule.cidrs.map((x) => x.text).join(', ')}`); continue }
      why.push(`client ip ${facts.ip} in ${hit.text}`)
    }
    if (rule.users !== undefined) {
      const user = readKey(facts, c.user!)
      if (user === undefined || !rule.users.has(user)) { step(false, `user (${c.user!.text}) ${user === undefined ? 'absent' : JSON.stringify(user.slice(0, 80))} not in users list`); continue }
      why.push(`user ${JSON.stringify(user)} in users list`)
    }
    if (rule.decision !== undefined) {
      step(true, why.length === 0 ? 'no conditions (matches every request)' : why.join(' and '))
      return { decision: rule.decision, version: c.version, index: rule.index, steps }
    }
    const split = rule.split!
    const sticky = split.key === undefined ? undefined : readKey(facts, split.key)
    const bucket = splitBucket(rule, facts)
    const d = splitDecision(rule, bucket)
    why.push(`bucket ${bucket} from ${sticky === undefined ? 'random (no sticky key)' : `${split.key!.text}`}`)
    if (d === undefined) { step(false, `${why.join(' and ')}: outside every weight, falls through`); continue }
    step(true, `${why.join(' and ')} -> ${d.tag}`)
    return { decision: d, version: c.version, index: rule.index, bucket, key: sticky === undefined ? 'random' : 'sticky', steps }
  }
  return { decision: c.defaultDecision, version: c.version, index: -1, steps }
}
