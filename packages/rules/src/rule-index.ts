import { CidrRanges } from './cidr-ranges.ts'
import { OP_EQUALS, OP_EXISTS, OP_IN, OP_PREFIX, type CompiledRule } from './compiled.ts'
import type { CompiledKey } from './facts.ts'
import type { Cidr } from './ip.ts'
import { PrefixRanges } from './prefix-ranges.ts'

/**
 * Where evaluate() finds its candidate rules. Each enabled rule is filed under one *anchor*:
 * a condition it cannot match without, chosen so that the request finds it by a lookup rather
 * than a scan. A request's candidates are the rules whose anchors its facts satisfy; they are
 * then checked in full, in rule order, so the first that matches is the one the linear scan
 * would have found. Lists of rule indexes are ascending throughout.
 */
export interface RuleIndex {
  /** The keys evaluate() reads one by one: all of them, or all but the headers (see `headers`). */
  readonly direct: readonly KeyIndex[]
  /**
   * Header anchors by (lower-case) name when there are more names than a request usually
   * carries headers: evaluate() then walks the request's headers and looks each up here, so
   * 1,000 rules on 1,000 different headers cost what the request's dozen headers cost.
   */
  readonly headers: ReadonlyMap<string, KeyIndex> | undefined
  /** Users anchors: user id -> rules. */
  readonly users: ReadonlyMap<string, readonly number[]> | undefined
  /** `ip` anchors: the client address -> rules with a block holding it. */
  readonly ip: CidrRanges | undefined
  /** Enabled rules with nothing to anchor on (no conditions, or only `exists: false`). */
  readonly unanchored: readonly number[]
  /** Per rule: true when its `ip` list is its anchor (so the lookup already proved it). */
  readonly ipAnchored: readonly boolean[]
  /** Per rule: its CIDR list as ranges when it is long and not the anchor, else undefined. */
  readonly cidrRanges: ReadonlyArray<CidrRanges | undefined>
}

export interface KeyIndex {
  readonly key: CompiledKey
  readonly slot: number
  /** `equals` and `in` anchors: value -> rules. */
  readonly values: ReadonlyMap<string, readonly number[]>
  /** `prefix` anchors. */
  readonly prefixes: PrefixRanges | undefined
  /** `exists: true` anchors: every present value. */
  readonly present: readonly number[]
}

/** Longer CIDR lists on non-anchor conditions get ranges of their own (a scan is cheaper below). */
const SCAN_CIDRS = 16
/** More anchored header names than this: walk the request's headers instead of reading each name. */
const WALK_HEADERS = 16

/**
 * value -> ascending rule list. Rules arrive in ascending order, so appending keeps each list
 * sorted; a key's first rule shares one array per rule, so a 100,000-user list costs map
 * entries, not 100,000 arrays.
 */
function postings<K> () {
  const map = new Map<K, number[]>()
  const single: number[][] = []
  return {
    map,
    add (key: K, rule: number): void {
      const list = map.get(key)
      if (list === undefined) map.set(key, single[rule] ??= [rule])
      else if (list[list.length - 1] === rule) return
      else if (list === single[list[0]!]) map.set(key, [list[0]!, rule])
      else list.push(rule)
    }
  }
}

interface KeyBuild {
  key: CompiledKey
  slot: number
  values: ReturnType<typeof postings<string>>
  prefixes: Array<[string, number]>
  present: number[]
}

export function buildRuleIndex (rules: readonly CompiledRule[], hasUser: boolean): RuleIndex {
  const keys = new Map<number, KeyBuild>()
  const keyOf = (key: CompiledKey, slot: number): KeyBuild => {
    let k = keys.get(slot)
    if (k === undefined) keys.set(slot, k = { key, slot, values: postings<string>(), prefixes: [], present: [] })
    return k
  }
  const users = postings<string>()
  const ips: Array<[Cidr, number]> = []
  const unanchored: number[] = []
  const ipAnchored = rules.map(() => false)
  const cidrRanges: Array<CidrRanges | undefined> = rules.map(() => undefined)
  for (const rule of rules) {
    if (!rule.enabled) continue
    const r = rule.index
    const conds = rule.conditions
    // Cheapest and most selective first: an exact value, then a user id, a client address,
    // a prefix, mere presence.
    const eq = conds.find((c) => c.op === OP_EQUALS) ?? conds.find((c) => c.op === OP_IN)
    if (eq !== undefined) {
      const k = keyOf(eq.key, eq.slot)
      if (eq.op === OP_EQUALS) k.values.add(eq.value, r)
      else for (const v of eq.set!) k.values.add(v, r)
    } else if (rule.users !== undefined && hasUser) {
      for (const u of rule.users) users.add(u, r)
    } else if (rule.cidrs !== undefined) {
      for (const c of rule.cidrs) ips.push([c, r])
      ipAnchored[r] = true
    } else {
      const pre = conds.find((c) => c.op === OP_PREFIX)
      const has = conds.find((c) => c.op === OP_EXISTS && c.exists)
      if (pre !== undefined) keyOf(pre.key, pre.slot).prefixes.push([pre.value, r])
      else if (has !== undefined) keyOf(has.key, has.slot).present.push(r)
      else unanchored.push(r)
    }
    if (rule.cidrs !== undefined && !ipAnchored[r] && rule.cidrs.length > SCAN_CIDRS) {
      cidrRanges[r] = new CidrRanges(rule.cidrs.map((c) => [c, 0] as const))
    }
  }
  const built: KeyIndex[] = [...keys.values()].map((k) => ({
    key: k.key,
    slot: k.slot,
    values: k.values.map,
    prefixes: k.prefixes.length === 0 ? undefined : new PrefixRanges(k.prefixes),
    present: k.present
  }))
  const headers = built.filter((k) => k.key.kind === 0)
  const walk = headers.length > WALK_HEADERS
  return {
    direct: walk ? built.filter((k) => k.key.kind !== 0) : built,
    headers: walk ? new Map(headers.map((k) => [k.key.name, k])) : undefined,
    users: users.map.size === 0 ? undefined : users.map,
    ip: ips.length === 0 ? undefined : new CidrRanges(ips),
    unanchored,
    ipAnchored,
    cidrRanges
  }
}
