import { z } from 'zod'
import { compileRuleSet, validateRuleSet, RulesError, type CompiledRuleSet, type RuleSetInput } from '@flowtag/rules'
import { compileCidrs, type Cidr } from '@flowtag/rules/internals'
import { badOptionMessage, describeBadOption } from '@flowtag/errors'
import { ContextError, errorCodes } from './errors.ts'
import { signingKeySchema } from './signing-options.ts'

/** Anything with the RuleStore's `compiled` getter and `onChange` (a RuleStore from @flowtag/rules). */
export interface RuleStoreLike {
  readonly compiled: CompiledRuleSet | undefined
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onChange(listener: (...args: any[]) => void): () => void
}

/** A pino-style logger; only `debug` and `warn` are used. */
export interface TagLogger {
  debug(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

const trustSchema = z.union([
  z.literal('never'),
  z.literal('always'),
  z.strictObject({
    cidrs: z.array(z.string()).min(1).optional(),
    // The keys of the one signing shape (a service's `signing` can be given here as it is).
    signed: z.strictObject({
      keys: z.array(signingKeySchema).min(1),
      /** Accepted so a `signing` object fits as it is; verification reads each token's own expiry. */
      ttlSeconds: z.int().min(10).max(86_400).optional(),
      cookie: z.string().min(1).max(256).default('flowtag'),
      query: z.string().min(1).max(256).default('flowtag')
    }).optional()
  }).refine((t) => t.cidrs !== undefined || t.signed !== undefined, { message: 'needs cidrs and/or signed' })
])

const isStore = (v: unknown): v is RuleStoreLike => typeof v === 'object' && v !== null && 'compiled' in v && typeof (v as RuleStoreLike).onChange === 'function'

export const FlowTagOptionsSchema = z.strictObject({
  mode: z.enum(['edge', 'service']),
  rules: z.union([
    z.custom<RuleStoreLike>(isStore),
    z.record(z.string(), z.unknown())
  ], { message: 'expected a RuleStore or a RuleSet object' }).optional(),
  trust: trustSchema.optional(),
  otel: z.boolean().default(true),
  /** The service this tagger serves: its `services.<name>.mirror` applies to the requests it handles. */
  service: z.string().min(1).max(256).optional(),
  tagLoss: z.enum(['off', 'count', 'strict']).optional(),
  logger: z.custom<TagLogger>((v) => typeof v === 'object' && v !== null && typeof (v as TagLogger).debug === 'function' && typeof (v as TagLogger).warn === 'function',
    { message: 'expected a logger with debug() and warn()' }).optional()
}).superRefine((o, ctx) => {
  if (o.mode === 'edge' && o.rules === undefined) ctx.addIssue({ code: 'custom', path: ['rules'], message: 'edge mode needs rules (a RuleStore or a RuleSet)' })
})

/** Options of the Fastify plugin, the Express middleware and the core tagger. */
export type FlowTagOptions = Omit<z.input<typeof FlowTagOptionsSchema>, 'rules'> & {
  /** Edge mode: the rules to evaluate, live (a RuleStore) or fixed (a RuleSet document). */
  rules?: RuleStoreLike | RuleSetInput
}

/** Options resolved once: rules compiled, CIDRs parsed, keys in a Map. */
export interface ResolvedOptions {
  mode: 'edge' | 'service'
  rules: (() => CompiledRuleSet | undefined) | undefined
  trustAll: boolean
  trustCidrs: Cidr[] | undefined
  signed: { keys: Map<string, string>, cookie: string, query: string } | undefined
  otel: boolean
  service: string | undefined
  tagLoss: 'off' | 'count' | 'strict' | undefined
  logger: TagLogger | undefined
}

const PKG = '@flowtag/context'

function fail (field: string, problem: string, cause?: unknown): never {
  throw new ContextError(errorCodes.BAD_OPTION, badOptionMessage(PKG, field, problem), { cause, field, problem })
}

export function resolveOptions (options: FlowTagOptions): ResolvedOptions {
  const parsed = FlowTagOptionsSchema.safeParse(options ?? {})
  if (!parsed.success) {
    const bad = describeBadOption(PKG, parsed.error, { schema: FlowTagOptionsSchema })
    throw new ContextError(errorCodes.BAD_OPTION, bad.message, bad)
  }
  const o = parsed.data
  let rules: ResolvedOptions['rules']
  if (o.rules !== undefined) {
    if (isStore(o.rules)) {
      const store = o.rules
      rules = () => store.compiled
    } else {
      let compiled: CompiledRuleSet
      try {
        compiled = compileRuleSet(validateRuleSet(o.rules, 'options.rules'))
      } catch (err) {
        fail('rules', (err as Error).message, err instanceof RulesError ? err : undefined)
      }
      rules = () => compiled
    }
  }
  const trust = o.trust ?? (o.mode === 'edge' ? 'never' : 'always')
  let trustCidrs: Cidr[] | undefined
  let signed: ResolvedOptions['signed']
  if (typeof trust === 'object') {
    if (trust.cidrs !== undefined) {
      try {
        trustCidrs = compileCidrs(trust.cidrs)
      } catch (err) {
        // compileCidrs names the bad block as data (`path`: ['cidrs', i]).
        const e = err as RulesError
        fail(e.path === undefined ? 'trust.cidrs' : ['trust', ...e.path].join('.'), e.problem ?? e.message, err)
      }
    }
    if (trust.signed !== undefined) {
      const keys = new Map<string, string>()
      trust.signed.keys.forEach((k, i) => {
        if (keys.has(k.id)) fail(`trust.signed.keys.${i}.id`, `duplicate key id "${k.id}"`)
        keys.set(k.id, k.secret)
      })
      signed = { keys, cookie: trust.signed.cookie, query: trust.signed.query }
    }
  }
  return { mode: o.mode, rules, trustAll: trust === 'always', trustCidrs, signed, otel: o.otel, service: o.service, tagLoss: o.tagLoss, logger: o.logger }
}
