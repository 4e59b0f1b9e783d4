import {
  compileRuleSet, OP_EQUALS, OP_IN, OP_PREFIX,
  type CompiledCondition, type CompiledRule, type CompiledRuleSet, type Decision
} from './compile.ts'
import type { KeyIndex } from './rule-index.ts'
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

// evaluate() is synchronous, so module-level scratch space is safe: the client address, the
// values of the rule set's distinct keys, each read at most once per call (`seen` holds the
// call number that filled a slot, so nothing needs clearing between calls), and the candidate
// lists being merged.
const addr = new Uint32Array(4)
let values: Array<string | undefined> = []
let seen = new Float64Array(0)
let call = 0
let family = -1 // per call: -1 client address not parsed yet, 0 none, 4 or 6
const lists: Array<readonly number[]> = []
let pos = new Int32Array(16)

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

function valueOf (facts: Facts, cond: CompiledCondition, id: number): string | undefined {
  const slot = cond.slot
  if (seen[slot] !== id) {
    values[slot] = readKey(facts, cond.key)
    seen[slot] = id
  }
  return values[slot]
}

function parseClient (facts: Facts): number {
  if (family === -1) family = typeof facts.ip === 'string' && facts.ip.length <= 64 ? parseIpInto(facts.ip, addr) : 0
  return family
}

/** Check every condition of one candidate (enabled) rule; its decision, or undefined. */
function decide (c: CompiledRuleSet, rule: CompiledRule, facts: Facts, id: number): Decision | undefined {
  const conds = rule.conditions
  for (let i = 0; i < conds.length; i++) {
    if (!conditionHolds(conds[i]!, valueOf(facts, conds[i]!, id))) return undefined
  }
  if (rule.cidrs !== undefined && !c.index.ipAnchored[rule.index]) {
    if (parseClient(facts) === 0) return undefined
    const ranges = c.index.cidrRanges[rule.index]
    if (ranges !== undefined) {
      if (ranges.lookup(addr) === undefined) return undefined
    } else {
      let inside = false
      for (let i = 0; i < rule.cidrs.length; i++) if (cidrContains(rule.cidrs[i]!, addr)) { inside = true; break }
      if (!inside) return undefined
    }
  }
  if (rule.users !== undefined) {
    const user = readKey(facts, c.user!)
    if (user === undefined || !rule.users.has(user)) return undefined
  }
  if (rule.decision !== undefined) return rule.decision
  return splitDecision(rule, splitBucket(rule, facts))
}

/** Read the anchored headers the request carries, walking its own header names. */
function walkHeaders (anchored: ReadonlyMap<string, KeyIndex>, facts: Facts, id: number): void {
  for (const name in facts.headers) {
    const k = anchored.get(name)
    if (k === undefined) continue
    const v = readKey(facts, k.key)
    values[k.slot] = v
    seen[k.slot] = id
    collect(k, v)
  }
}

/** Add the candidate lists one anchored key contributes for `value`. */
function collect (k: KeyIndex, value: string | undefined): void {
  if (value === undefined) return // every anchor needs a present value
  const hit = k.values.get(value)
  if (hit !== undefined) lists.push(hit)
  if (k.prefixes !== undefined) {
    const pre = k.prefixes.lookup(value)
    if (pre !== undefined) lists.push(pre)
  }
  if (k.present.length > 0) lists.push(k.present)
}

/**
 * Decide a request's lane: rules in order, first match wins; a split that leaves a request
 * outside every weight (and has no `rest`) falls through to the next rule. The rule index
 * (rule-index.ts) gives the candidate rules, a few ascending lists; they are merged by rule
 * index and checked in full, so the result is the linear scan's, at a cost that depends on
 * the request's candidates rather than on the size of the rule set. Pure apart from
 * randomness for splits without a key; allocates nothing on the common paths (decisions are
 * pre-built and shared, frozen).
 *
 * @param ruleSet a validated RuleSet, or its compiled form (`compileRuleSet`, what a RuleStore holds)
 * @param facts `{ headers, query?, cookies?, ip?, random? }`: header names lower-case as Node
 *   gives them; `cookies` @default read from `headers.cookie`; `random` @default Math.random
 * @returns `{ tag, rule?, reason }`: the lane, the rule that chose it (none for the default), why
 */
export function evaluate (ruleSet: RuleSet | CompiledRuleSet, facts: Facts): Decision {
  const c = compileRuleSet(ruleSet)
  const index = c.index
  if (seen.length < c.keys.length) {
    seen = new Float64Array(c.keys.length * 2)
    values = new Array<string | undefined>(c.keys.length * 2)
  }
  const id = ++call
  family = -1
  lists.length = 0
  const direct = index.direct
  for (let i = 0; i < direct.length; i++) {
    const k = direct[i]!
    const v = readKey(facts, k.key)
    values[k.slot] = v
    seen[k.slot] = id
    collect(k, v)
  }
  if (index.headers !== undefined) walkHeaders(index.headers, facts, id)
  if (index.users !== undefined) {
    const user = readKey(facts, c.user!)
    const hit = user === undefined ? undefined : index.users.get(user)
    if (hit !== undefined) lists.push(hit)
  }
  if (index.ip !== undefined && parseClient(facts) !== 0) {
    const hit = index.ip.lookup(addr)
    if (hit !== undefined) lists.push(hit)
  }
  if (index.unanchored.length > 0) lists.push(index.unanchored)
  const rules = c.rules
  const n = lists.length
  if (n === 1) {
    const only = lists[0]!
    for (let i = 0; i < only.length; i++) {
      const d = decide(c, rules[only[i]!]!, facts, id)
      if (d !== undefined) return d
    }
    return c.defaultDecision
  }
  return merge(c, n, facts, id)
}

/** k-way merge of the candidate lists by rule index; a rule in several lists is tried once. */
function merge (c: CompiledRuleSet, n: number, facts: Facts, id: number): Decision {
  const rules = c.rules
  if (pos.length < n) pos = new Int32Array(n * 2)
  pos.fill(0, 0, n)
  let last = -1
  for (;;) {
    let next = 0x7fffffff
    for (let j = 0; j < n; j++) {
      const l = lists[j]!
      let p = pos[j]!
      while (p < l.length && l[p]! <= last) p++
      pos[j] = p
      if (p < l.length && l[p]! < next) next = l[p]!
    }
    if (next === 0x7fffffff) return c.defaultDecision
    last = next
    const d = decide(c, rules[next]!, facts, id)
    if (d !== undefined) return d
  }
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
    if (!rule.enabled) { step(false, rule.expired ? `lease ran out at ${new Date(rule.expiresAt).toISOString()}` : 'disabled'); continue }
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
