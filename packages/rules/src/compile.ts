import { OP_EQUALS, OP_EXISTS, OP_IN, OP_PREFIX, type MirrorPlan, type CompiledCondition, type CompiledRange, type CompiledRule, type CompiledSplit, type Decision, type ServiceLaneInfo } from './compiled.ts'
import { compileKey, type CompiledKey } from './facts.ts'
import { BUCKETS, saltSeed } from './hash.ts'
import { parseCidr } from './ip.ts'
import { buildRuleIndex, type RuleIndex } from './rule-index.ts'
import { candidateLane, type Mirror, type RuleSet, type ShadowRuleSet, type StringMatch } from './schema.ts'

// The shapes live in compiled.ts (no import circle with rule-index.ts); still exported from here.
export { OP_EQUALS, OP_EXISTS, OP_IN, OP_PREFIX }
export type { CompiledCondition, CompiledRange, CompiledRule, CompiledSplit, Decision, MirrorPlan } from './compiled.ts'

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
  /** Each service's lanes as routing sees them at compile time (leases applied). */
  readonly services: ReadonlyMap<string, ServiceLaneInfo>
  /**
   * The mirrors of enabled rules by rule name (a decision's `rule` finds its rule's mirror); empty
   * when no rule mirrors. A service entry's mirror is in `services`.
   */
  readonly mirrors: ReadonlyMap<string, MirrorPlan>
  /** Some enabled rule or some service entry mirrors: when false, a tagger skips the mirror draw at once. */
  readonly hasMirrors: boolean
  /** The shadow RuleSet, compiled; undefined when the document has none. */
  readonly shadow: CompiledRuleSet | undefined
  /** The clock (ms) leases were judged against. */
  readonly now: number
  /**
   * The next lease end after `now` (ms), Infinity when none: this compiled form is exact until
   * then. A RuleStore recompiles at that moment; evaluate() never looks at the clock.
   */
  readonly nextExpiry: number
  /** The latest lease end at or before `now` (ms), -Infinity when none. */
  readonly lastExpiry: number
  /** What had run out at `now`: `rules.<name>`, `services.<service>.<lane>` (for logs). */
  readonly expired: readonly string[]
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

const cache = new WeakMap<RuleSet | ShadowRuleSet, CompiledRuleSet>()

/** Every lease end in the document (rules, leased candidates), in ms. */
function leaseEnds (ruleSet: RuleSet | ShadowRuleSet): number[] {
  const ends: number[] = []
  for (const r of ruleSet.rules) if (r.expiresAt !== undefined) ends.push(Date.parse(r.expiresAt))
  for (const s of Object.values(ruleSet.services)) for (const c of s.candidates) if (typeof c !== 'string') ends.push(Date.parse(c.expiresAt))
  return ends
}

function mirrorPlan (m: Mirror): MirrorPlan {
  return Object.freeze({ lane: m.lane, percent: m.percent, methods: new Set(m.methods) })
}

function lanesAt (ruleSet: RuleSet | ShadowRuleSet, now: number, expired: string[]): Map<string, ServiceLaneInfo> {
  const out = new Map<string, ServiceLaneInfo>()
  for (const [service, s] of Object.entries(ruleSet.services)) {
    const candidates: string[] = []
    const gone: string[] = []
    for (const c of s.candidates) {
      if (typeof c !== 'string' && Date.parse(c.expiresAt) <= now) {
        gone.push(c.lane)
        expired.push(`services.${service}.${c.lane}`)
      } else candidates.push(candidateLane(c))
    }
    let weights = s.weights
    if (weights !== undefined && gone.length > 0) weights = Object.fromEntries(Object.entries(weights).filter(([lane]) => !gone.includes(lane)))
    const info: ServiceLaneInfo = { stable: s.stable, candidates, strict: s.strict }
    if (weights !== undefined) info.weights = weights
    if (gone.length > 0) info.expired = gone
    if (s.mirror !== undefined) info.mirror = mirrorPlan(s.mirror)
    out.set(service, Object.freeze(info))
  }
  return out
}

export function isCompiled (value: unknown): value is CompiledRuleSet {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kCompiled] === true
}

/**
 * Compile a validated RuleSet once (memoised per object). evaluate() accepts either form;
 * stores hand out the compiled one so the hot path does no lookups at all.
 *
 * Leases (`expiresAt`) are judged against `now` (ms, default `Date.now()`, read only when the
 * document has a lease): a rule whose lease has run out compiles as disabled, a leased
 * candidate lane as gone. The memo holds while `now` stays between `lastExpiry` and
 * `nextExpiry`; a compiled form passed in is returned as it is.
 */
export function compileRuleSet (ruleSet: RuleSet | ShadowRuleSet | CompiledRuleSet, now?: number): CompiledRuleSet {
  if (isCompiled(ruleSet)) return ruleSet
  const hit = cache.get(ruleSet)
  if (hit !== undefined) {
    if (hit.nextExpiry === Infinity && hit.lastExpiry === -Infinity) return hit
    const t = now ?? Date.now()
    if (t >= hit.lastExpiry && t < hit.nextExpiry) return hit
  }
  const ends = leaseEnds(ruleSet)
  const at = ends.length === 0 ? 0 : (now ?? Date.now())
  let nextExpiry = Infinity
  let lastExpiry = -Infinity
  for (const e of ends) {
    if (e > at) nextExpiry = Math.min(nextExpiry, e)
    else lastExpiry = Math.max(lastExpiry, e)
  }
  const expired: string[] = []
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
    const expiresAt = r.expiresAt === undefined ? Infinity : Date.parse(r.expiresAt)
    const lapsed = expiresAt <= at
    if (lapsed) expired.push(`rules.${r.name}`)
    return {
      name: r.name,
      index,
      enabled: r.enabled && !lapsed,
      expired: lapsed,
      expiresAt,
      conditions,
      cidrs,
      users: r.when.users === undefined ? undefined : new Set(r.when.users),
      decision: r.lane === undefined ? undefined : decision(r.lane, r.name, `rule "${r.name}" matched`),
      split
    }
  })
  const mirrors = new Map<string, MirrorPlan>()
  ruleSet.rules.forEach((r, i) => { if (r.mirror !== undefined && rules[i]!.enabled) mirrors.set(r.name, mirrorPlan(r.mirror)) })
  const services = lanesAt(ruleSet, at, expired)
  let hasMirrors = mirrors.size > 0
  for (const info of services.values()) if (info.mirror !== undefined) hasMirrors = true
  const compiled: CompiledRuleSet = Object.freeze({
    [kCompiled]: true as const,
    ruleSet,
    version: ruleSet.version,
    user,
    rules,
    defaultDecision: decision(ruleSet.default, undefined, 'no rule matched: default lane'),
    keys,
    index: buildRuleIndex(rules, user !== undefined),
    services,
    mirrors,
    hasMirrors,
    shadow: 'shadow' in ruleSet && ruleSet.shadow !== undefined ? compileRuleSet(ruleSet.shadow, at) : undefined,
    now: at,
    nextExpiry,
    lastExpiry,
    expired: Object.freeze(expired)
  })
  cache.set(ruleSet, compiled)
  return compiled
}
