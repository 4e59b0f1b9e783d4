// Options of the preset: the zod schema is the source of truth, parsed once by createFlowTagService.
// The nested parts reuse the composed packages' own schemas, so a field means the same everywhere.
import { describeBadOption } from '@flowtag/errors'
import { NacosClient, registrationOptionsSchema, type NacosClientOptions } from '@flowtag/nacos'
import { outboundOptionsSchema } from '@flowtag/outbound'
import { LANE_PATTERN, validateRuleSet, type RuleIssue, type RulesError, type RuleSetInput, type RuleStore } from '@flowtag/rules'
import { signingOptionsSchema, type FlowTagOptions } from '@flowtag/context'
import { z } from 'zod'
import { PACKAGE, badServiceOption } from './errors.ts'
import { shadowOptionsSchema } from './mirror.ts'

/** A pino-style logger (Fastify's `app.log` fits); `child` is used when present. */
export interface ServiceLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

const isLogger = (v: unknown): v is ServiceLogger =>
  typeof v === 'object' && v !== null && ['debug', 'info', 'warn', 'error'].every((k) => typeof (v as Record<string, unknown>)[k] === 'function')

const path = z.union([z.string().startsWith('/'), z.literal(false)])

/** Registration options besides the ones the service states at the top (name, version, logger). */
const registrationSchema = registrationOptionsSchema.omit({ service: true, version: true, logger: true })

/** Rules from the Nacos config center: the RuleSet document under dataId/group. */
const nacosRulesSchema = z.strictObject({
  /** The RuleSet's dataId, 1-256 characters. */
  dataId: z.string().min(1).max(256),
  /** @default 'DEFAULT_GROUP' */
  group: z.string().min(1).max(128).default('DEFAULT_GROUP'),
  /** The last good RuleSet is kept here, and read at start when Nacos has nothing to give. */
  cacheFile: z.string().min(1).optional(),
  /** How long start-up waits for the first RuleSet before going on without (or with the cache), in milliseconds. @default 5000 */
  startTimeoutMs: z.int().min(1).max(600_000).default(5000)
})

/** Outbound options besides what the service wires itself (discovery, lanes, and `signing`, given at the top). */
const outboundSchema = outboundOptionsSchema.omit({ discovery: true, lanes: true, signing: true })

export const serviceOptionsSchema = z.strictObject({
  /** Service name in Nacos, and the host name other services call it by (`http://<service>/...`). */
  service: z.string().min(1).max(512).refine((s) => !/\s/.test(s), 'no whitespace'),
  /** This instance's lane label (`metadata.version`), e.g. `v1`, `v2`. */
  version: z.string().regex(LANE_PATTERN, 'a lane name: 1-64 characters of [A-Za-z0-9._-]').optional(),
  /** `edge` decides each request's lane from the rules; `service` carries the incoming one. @default 'service' */
  mode: z.enum(['edge', 'service']).default('service'),
  /** A NacosClient (left open) or the options to create one (closed with the service). */
  nacos: z.union([z.instanceof(NacosClient), z.record(z.string(), z.unknown())], { message: 'expected a NacosClient or client options ({ serverAddr, ... })' }),
  /** Registration in Nacos (`false`: do not register, e.g. an edge nobody calls by name). @default {} (register, with @flowtag/nacos's defaults) */
  registration: z.union([z.literal(false), registrationSchema]).prefault({}),
  /** The RuleSet: `{ dataId, group }` in Nacos, a RuleStore (left open), or a fixed RuleSet document. */
  rules: z.unknown().optional(),
  /** Who may set a request's lane with `x-flow-tag` (see @flowtag/context); default: edge never, service always (signed only with `signing`). */
  trust: z.unknown().optional(),
  /**
   * Sign the lane on every outbound hop and, in service mode, honour only signed incoming tags
   * (unless `trust` says otherwise). Without it, service mode trusts the network.
   */
  signing: signingOptionsSchema.optional(),
  /**
   * Folder for the disk snapshots (the last good RuleSet and the Nacos client's instance and
   * config snapshots), so a process started while Nacos is down serves from them; `false`: none.
   * Default: `~/.flowtag/cache/<service>` (see README, "Cold start").
   */
  cacheDir: z.union([z.string().min(1), z.literal(false)]).optional(),
  /** Put the lane on OpenTelemetry spans and baggage. @default true */
  otel: z.boolean().default(true),
  /**
   * Debug headers for clients of an edge: the fallback receipt as `x-flowtag-fallback` on the
   * response. Services (mode `service`) always return it to their caller, so it reaches the edge.
   */
  debug: z.boolean().default(false),
  /**
   * Record `http.server.request.duration` per lane, the rule version in force and the process
   * start time (OpenTelemetry API); `false`: none. Requests to the probes (`healthPath`,
   * `readyPath`), to `metrics.path` and to `metrics.excludeRoutes` are not lane traffic and are
   * never recorded. `serve: true`: the preset serves them itself, as Prometheus text at `path`
   * (a private OpenTelemetry MeterProvider holding the preset's and its dispatcher's instruments:
   * what a canary controller reads, with no SDK wiring in the app); leave it off when the app has
   * its own SDK and route. @default true (= `{ path: '/metrics', excludeRoutes: [], serve: false }`)
   */
  metrics: z.union([
    z.boolean(),
    z.strictObject({
      /** The route the app serves its Prometheus text at (scrapes are not traffic); `false`: none. @default '/metrics' */
      path: path.default('/metrics'),
      /** More routes that are not lane traffic: route templates (`/internal/:id`), or paths for requests no route matched. @default [] */
      excludeRoutes: z.array(z.string().startsWith('/')).max(1000).default([]),
      /** Serve the preset's own Prometheus text at `path` (needs `path`). @default false */
      serve: z.boolean().default(false)
    }).refine((m) => !m.serve || m.path !== false, { message: 'serve needs a path', path: ['serve'] })
  ]).default(true),
  /** Options of the lane-aware dispatcher (see @flowtag/outbound), besides discovery and lanes. */
  outbound: outboundSchema.prefault({}),
  /**
   * Mirrors (a rule's or the service entry's `mirror` in the RuleSet): copies of drawn requests
   * go to this service in the mirror lane as shadows, and both answers to `comparer`.
   * `{ comparer?, maxInFlight @default 16, maxBodyBytes @default 1 MiB, timeoutMs @default 5000 }`.
   */
  shadow: shadowOptionsSchema,
  /** Liveness route (`false`: none). @default '/health' */
  healthPath: path.default('/health'),
  /** Readiness route: 200 when registered and not draining, else 503 (`false`: none). @default '/ready' */
  readyPath: path.default('/ready'),
  /** pino-style logger. @default silent (the Fastify plugin: the app's logger) */
  logger: z.custom<ServiceLogger>(isLogger, 'expected a pino-style logger (debug/info/warn/error)').optional()
})

/** Rules given as a store: a RuleStore of @flowtag/rules (or any object of that shape). */
export type RuleStoreInput = Pick<RuleStore, 'compiled' | 'current' | 'onChange'> & Partial<Pick<RuleStore, 'ready' | 'version'>>

export type NacosRulesOptions = z.input<typeof nacosRulesSchema>

/** Options of `createFlowTagService`, the Fastify plugin and the Express middleware. */
export type FlowTagServiceOptions = Omit<z.input<typeof serviceOptionsSchema>, 'nacos' | 'rules' | 'trust'> & {
  nacos: NacosClient | NacosClientOptions
  rules?: NacosRulesOptions | RuleStoreInput | RuleSetInput
  trust?: FlowTagOptions['trust']
}

export type RulesSpec =
  | { kind: 'nacos', options: z.output<typeof nacosRulesSchema> }
  | { kind: 'store', store: RuleStoreInput }
  | { kind: 'document', document: object }

export type ResolvedServiceOptions = Omit<z.output<typeof serviceOptionsSchema>, 'rules' | 'nacos'> & {
  nacos: NacosClient | NacosClientOptions
  rules: RulesSpec | undefined
}

const isStore = (v: object): v is RuleStoreInput => 'compiled' in v && typeof (v as RuleStoreInput).onChange === 'function'

/**
 * Validate the options once.
 * @throws {FlowTagError} `FLOWTAG_SERVICE_BAD_OPTION` naming the first bad field.
 */
export function parseServiceOptions (input: unknown): ResolvedServiceOptions {
  const o = check(serviceOptionsSchema, input ?? {})
  let rules: RulesSpec | undefined
  if (o.rules !== undefined) {
    const r = o.rules
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw badServiceOption('rules', 'expected { dataId, group }, a RuleStore or a RuleSet object')
    if (isStore(r)) rules = { kind: 'store', store: r }
    else if ('dataId' in r || !RULESET_KEYS.some((k) => k in r)) rules = { kind: 'nacos', options: check(nacosRulesSchema, r, 'rules', ' in rules from the Nacos config center') }
    else rules = { kind: 'document', document: inlineRuleSet(r) }
  }
  if (o.mode === 'edge' && rules === undefined) throw badServiceOption('rules', 'edge mode needs rules ({ dataId, group }, a RuleStore or a RuleSet)')
  // As the dispatcher and FlowTagGrpc refuse the pair: one of them would be dropped unseen.
  if (o.signing !== undefined && o.outbound.signTag !== undefined) throw badServiceOption('outbound.signTag', 'give signing or outbound.signTag (deprecated), not both: signing signs the hops')
  return { ...o, nacos: o.nacos as NacosClient | NacosClientOptions, rules }
}

/**
 * Keys only a RuleSet document has: an object under `rules` with none of them (and no `dataId`)
 * is read as the Nacos spec, so `{ dataid: ... }` is reported as a bad key of that spec, not as a
 * RuleSet without a version.
 */
const RULESET_KEYS = ['version', 'default', 'rules', 'services', 'user', 'shadow']

/** A RuleSet given inline: the first bad field is named by its path under `rules`. */
function inlineRuleSet (r: object): object {
  try {
    return validateRuleSet(r, 'rules')
  } catch (err) {
    // validateRuleSet lists at least one issue, each at a path inside the object (an unknown key first)
    const [first, ...rest] = (err as RulesError).issues as [RuleIssue, ...RuleIssue[]]
    const others = rest.length === 0 ? '' : `; also ${rest.slice(0, 5).map((i) => `rules.${i.path}: ${i.message}`).join('; ')}${rest.length > 5 ? `; and ${rest.length - 5} more` : ''}`
    throw badServiceOption(`rules.${first.path}`, `${first.message}, in the RuleSet document given as the "rules" option${others}`, err)
  }
}

/** Parse with `schema`; the error names the first bad field (an unknown key before the rest). */
function check<S extends z.ZodType> (schema: S, input: unknown, prefix?: string, where = ''): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  // An unknown key first (describeBadOption's order), named with the valid keys and the closest one.
  const bad = describeBadOption(PACKAGE, result.error, prefix === undefined ? { schema } : { schema, prefix })
  const problem = where !== '' && bad.problem.startsWith('unknown key') ? `unknown key${where}${bad.problem.slice('unknown key'.length)}` : bad.problem
  throw badServiceOption(bad.field, problem, undefined, bad.path)
}

/**
 * Validate options without creating anything (no connection, no folder): for frameworks that
 * take the options long before they create the service (@flowtag/nestjs's `forRoot`). The
 * preset's own fields and the rules are checked here; options handed whole to a composed client
 * (`nacos` as client options, `trust`) are checked by
 * `createFlowTagService`, with the same error.
 * @throws {FlowTagError} `FLOWTAG_SERVICE_BAD_OPTION` naming the first bad field.
 */
export function validateServiceOptions (options: FlowTagServiceOptions): void {
  parseServiceOptions(options)
}
