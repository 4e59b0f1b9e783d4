import { z } from 'zod'
import { parseCidr } from './ip.ts'

/** A lane (flow tag) name: the same grammar as the x-flow-tag header. */
export const LANE_PATTERN = /^[A-Za-z0-9._-]{1,64}$/

/** The Nacos instance metadata key an instance publishes the RuleSet version it applies under (presets write it; the canary reads it). */
export const RULES_VERSION_METADATA = 'flowtag.rules.version'

const lane = z.string().regex(LANE_PATTERN, 'must be 1-64 characters of [A-Za-z0-9._-]')
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/, 'not a valid HTTP header name')
const paramName = z.string().min(1).max(256)

/** Adds one issue unless exactly one of `keys` is set on the object. */
function exactlyOne<T extends object> (keys: readonly (keyof T & string)[]) {
  return (value: T, ctx: z.RefinementCtx) => {
    const set = keys.filter((k) => value[k] !== undefined)
    if (set.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: set.length === 0
          ? `needs one of: ${keys.join(', ')}`
          : `only one of ${keys.join(', ')} may be set (got ${set.join(', ')})`
      })
    }
  }
}

/** How one header, cookie or query value is tested. Exactly one operator. */
export const StringMatchSchema = z.strictObject({
  equals: z.string().optional(),
  in: z.array(z.string()).min(1).max(10000).optional(),
  prefix: z.string().min(1).optional(),
  exists: z.boolean().optional()
}).superRefine(exactlyOne(['equals', 'in', 'prefix', 'exists']))

/** Where a key (user id, sticky split key) is read from. Exactly one of header / cookie / query. */
export const KeySourceSchema = z.strictObject({
  header: headerName.optional(),
  cookie: paramName.optional(),
  query: paramName.optional()
}).superRefine(exactlyOne(['header', 'cookie', 'query']))

const cidr = z.string().refine((s) => parseCidr(s) !== undefined, { message: 'not a valid IPv4/IPv6 address or CIDR' })

/** Conditions of a rule: all that are present must hold (AND). An empty `when` matches everything. */
export const WhenSchema = z.strictObject({
  headers: z.record(headerName, StringMatchSchema).optional(),
  cookies: z.record(paramName, StringMatchSchema).optional(),
  query: z.record(paramName, StringMatchSchema).optional(),
  ip: z.array(cidr).min(1).max(10000).optional(),
  users: z.array(z.string().min(1)).min(1).max(100000).optional()
})

const weight = z.number().min(0).max(100)

/**
 * A lease's end: RFC 3339 with an offset (`2026-12-01T18:00:00Z`). Not checked against the
 * clock here: a stored document whose lease has run out still loads and simply stops matching;
 * publishing one is refused by checkLeases().
 */
export const ExpiresAtSchema = z.iso.datetime({ offset: true })

/** A weighted split: lanes take consecutive hash-bucket ranges in the order written. */
export const SplitSchema = z.strictObject({
  key: KeySourceSchema.optional(),
  salt: z.string().min(1).max(256).optional(),
  weights: z.record(lane, weight).refine((w) => Object.keys(w).length > 0, { message: 'needs at least one lane' }),
  rest: lane.optional()
}).superRefine((split, ctx) => {
  let sum = 0
  for (const w of Object.values(split.weights)) sum += Math.round(w * 100)
  if (sum > 10000) ctx.addIssue({ code: 'custom', path: ['weights'], message: `weights add up to ${sum / 100}%, more than 100%` })
})

/** The methods a mirror copies unless told otherwise: the safe ones. */
export const DEFAULT_MIRROR_METHODS: readonly string[] = Object.freeze(['GET', 'HEAD'])

/**
 * A mirror: `percent` (0..100) of the requests decided by the rule (or handled by the service)
 * whose method is in `methods` are also copied, as a shadow, into `lane`. The user's request is
 * routed exactly as without it; the copy's answer is only compared.
 */
export const MirrorSchema = z.strictObject({
  lane,
  percent: z.number().min(0).max(100),
  methods: z.array(z.string().regex(/^[A-Z]{1,16}$/, 'must be an HTTP method in upper case (GET, HEAD, ...)')).min(1).max(16)
    .default(() => [...DEFAULT_MIRROR_METHODS])
})

export const RuleSchema = z.strictObject({
  name: z.string().min(1).max(128),
  description: z.string().max(1024).optional(),
  enabled: z.boolean().default(true),
  when: WhenSchema.default({}),
  lane: lane.optional(),
  split: SplitSchema.optional(),
  /** Copy a share of the requests this rule decides into another lane, as shadows (see README "Mirrors"). */
  mirror: MirrorSchema.optional(),
  /** Lease: after this instant the rule stops matching (traffic falls to the next rule / default). */
  expiresAt: ExpiresAtSchema.optional()
}).superRefine(exactlyOne(['lane', 'split']))

/** A candidate lane under lease: after `expiresAt` it is no longer routed (its traffic goes to stable). */
export const LeasedLaneSchema = z.strictObject({ lane, expiresAt: ExpiresAtSchema })
const candidate = z.union([lane, LeasedLaneSchema])

/** The lane name of a candidate entry (a plain lane or a leased one). */
export function candidateLane (c: string | { lane: string }): string {
  return typeof c === 'string' ? c : c.lane
}

/** Lanes of one service, as @flowtag/outbound reads them. */
export const ServiceLanesSchema = z.strictObject({
  stable: lane,
  candidates: z.array(candidate).max(64).default([]),
  strict: z.boolean().default(false),
  weights: z.record(lane, weight).optional(),
  /** Copy a share of the requests this service handles into another lane, as shadows; a rule's own mirror wins. */
  mirror: MirrorSchema.optional()
}).superRefine((s, ctx) => {
  const seen = new Set<string>([s.stable])
  s.candidates.forEach((entry, i) => {
    const c = candidateLane(entry)
    if (seen.has(c)) ctx.addIssue({ code: 'custom', path: ['candidates', i], message: `lane "${c}" is listed twice (stable and candidates must differ)` })
    seen.add(c)
  })
  for (const k of Object.keys(s.weights ?? {})) {
    if (!seen.has(k)) ctx.addIssue({ code: 'custom', path: ['weights', k], message: `lane "${k}" is neither the stable lane nor a candidate` })
  }
})

const serviceName = z.string().min(1).max(256)

const ruleSetShape = {
  $schema: z.string().optional(),
  version: z.int().min(0),
  description: z.string().max(4096).optional(),
  user: KeySourceSchema.optional(),
  services: z.record(serviceName, ServiceLanesSchema).default({}),
  rules: z.array(RuleSchema).max(1000).default([]),
  default: lane
}

function ruleSetChecks (rs: { user?: unknown, rules: Array<{ name: string, when: { users?: unknown } }> }, ctx: z.RefinementCtx): void {
  const names = new Map<string, number>()
  rs.rules.forEach((r, i) => {
    const first = names.get(r.name)
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `duplicate rule name "${r.name}" (first at rules.${first})` })
    else names.set(r.name, i)
    if (r.when.users !== undefined && rs.user === undefined) {
      ctx.addIssue({ code: 'custom', path: ['rules', i, 'when', 'users'], message: 'a users list needs the top-level "user" key source (header, cookie or query naming the user)' })
    }
  })
}

/**
 * A candidate RuleSet evaluated next to the live one on every request at the edge, without
 * changing routing (see README "Shadow rules"). Same schema, without a shadow of its own.
 */
export const ShadowRuleSetSchema = z.strictObject(ruleSetShape).superRefine(ruleSetChecks)

/** A versioned gray-release rule set. Rules are tried in order; the first that matches decides. */
export const RuleSetSchema = z.strictObject({ ...ruleSetShape, shadow: ShadowRuleSetSchema.optional() }).superRefine(ruleSetChecks)

export type RuleSet = z.output<typeof RuleSetSchema>
export type RuleSetInput = z.input<typeof RuleSetSchema>
export type Rule = z.output<typeof RuleSchema>
export type When = z.output<typeof WhenSchema>
export type StringMatch = z.output<typeof StringMatchSchema>
export type KeySource = z.output<typeof KeySourceSchema>
export type Split = z.output<typeof SplitSchema>
export type ServiceLanes = z.output<typeof ServiceLanesSchema>
export type ShadowRuleSet = z.output<typeof ShadowRuleSetSchema>
export type LeasedLane = z.output<typeof LeasedLaneSchema>
export type Mirror = z.output<typeof MirrorSchema>
