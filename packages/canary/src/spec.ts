// The Canary spec: what to roll out, in which steps, and when to stop. Validated once, with
// coded errors naming the field. Defaults follow the design article's policy (chapter 4.4):
// error rate > 5% sustained 2 minutes → alert; 5xx > 10% → pause; p99 > 1 s → roll back.
import { optionErrorMessage } from '@flowtag/errors'
import { KeySourceSchema, LANE_PATTERN } from '@flowtag/rules'
import { z } from 'zod'
import { CanaryError, errorCodes, PACKAGE } from './errors.ts'
import { PrometheusSpecSchema } from './prometheus.ts'
import { HooksSpecSchema } from './hooks.ts'
import { SequentialSpecSchema } from './sequential-spec.ts'

const lane = z.string().regex(LANE_PATTERN, 'must be 1-64 characters of [A-Za-z0-9._-]')
const ms = (max: number) => z.number().int().min(1).max(max)
const ratio = z.number().min(0).max(1)
const DAY = 86_400_000

/** What a breached threshold does once it has failed `failedChecks` checks in a row. */
export const BreachAction = z.enum(['pause', 'rollback'])

export const ThresholdsSchema = z.strictObject({
  /** Any error (5xx or network) share above `max` for `sustainedMs` → an `alert` notification. */
  errorRate: z.strictObject({ max: ratio.default(0.05), sustainedMs: ms(DAY).default(120_000) }).prefault({}),
  /** 5xx share above `max` → a failed check; the canary pauses, then rolls back after `failedChecks`. */
  serverErrorRate: z.strictObject({ max: ratio.default(0.10), action: BreachAction.default('pause') }).prefault({}),
  /** p99 latency above `maxSeconds` → a failed check that rolls back after `failedChecks`. */
  p99: z.strictObject({ maxSeconds: z.number().positive().max(3600).default(1), action: BreachAction.default('rollback') }).prefault({}),
  /**
   * Restarts of the candidate's instances in the window (counter reset, new process start time,
   * gone from discovery) above the stable lane's by more than `maxIncrease` → a failed check.
   */
  restarts: z.strictObject({ maxIncrease: z.number().int().min(0).max(1000).default(0), action: BreachAction.default('pause') }).prefault({}),
  /** Candidate against stable over the same window. */
  relative: z.strictObject({
    /** Candidate error share may exceed stable's by at most this many points (0.05 = 5 points). */
    maxErrorRateIncrease: ratio.default(0.05),
    /** Candidate p99 may be at most this multiple of stable's p99 ... */
    maxP99Ratio: z.number().min(1).max(1000).default(2),
    /** ... once it is above this floor (tiny latencies make ratios noise). */
    p99FloorSeconds: z.number().min(0).max(3600).default(0.1),
    action: BreachAction.default('pause')
  }).prefault({})
})

export const CanarySpecSchema = z.strictObject({
  /** The service whose candidate lane is rolled out (its instances' /metrics are judged). Exactly one of `service` and `lane`. */
  service: z.string().min(1).max(256).optional(),
  /**
   * A lane canary: the lane to release (the candidate). Every service with instances in it (HTTP,
   * gRPC, message consumers) is found in Nacos, judged against its `stable` lane, and the whole
   * lane rolls back when one fails. Exactly one of `service` and `lane`.
   */
  lane: lane.optional(),
  /** The candidate lane (with `lane`: the same, may be left out). */
  candidate: lane.optional(),
  stable: lane,
  /** With `lane`: services looked at besides those the RuleSet's `services` names (Nacos has no query by metadata). */
  services: z.array(z.string().min(1).max(256)).max(200).default([]),
  /** With `lane`: services never judged nor waited for, though they have instances in the lane (one without per-lane figures, such as a gRPC server today). */
  exclude: z.array(z.string().min(1).max(256)).max(200).default([]),
  /**
   * Warm-up window of a candidate instance, ms from the `flowtag.startedAt` it publishes in Nacos
   * (@flowtag/outbound's and @flowtag/grpc's default warm-up): a check that fails on latency alone
   * while a candidate instance is warming waits (`waiting: warming ...`). 0: off.
   */
  warmupMs: z.number().int().min(0).max(DAY).default(60_000),
  /** Share (%) of traffic to the candidate at each step, increasing; the last is usually 100. */
  steps: z.array(z.number().gt(0).max(100)).min(1).max(50).default([5, 10, 25, 50, 100])
    .refine((s) => s.every((w, i) => i === 0 || w > s[i - 1]!), { message: 'steps must increase' }),
  /** Time between two checks of a step, in ms. */
  intervalMs: ms(DAY).default(60_000),
  /** Candidate requests a step needs in its window before it is judged (below: `waiting`). */
  minRequests: z.number().int().min(1).max(1e9).default(100),
  /** Passing checks at a step before moving to the next. */
  checksPerStep: z.number().int().min(1).max(100).default(1),
  /** Failing checks in a row before the canary is rolled back. */
  failedChecks: z.number().int().min(1).max(100).default(2),
  /** How long a step may wait for `minRequests`; then `onDeadline` applies. */
  maxWaitMs: ms(DAY).default(600_000),
  /** How long instances may take to report a step's rule version before the canary pauses. */
  convergenceTimeoutMs: ms(DAY).default(120_000),
  /** Overall deadline from start; then `onDeadline` applies. */
  deadlineMs: ms(30 * DAY).default(3_600_000),
  /** What a deadline (overall, or a step's wait for traffic) does: never a silent pass by default. */
  onDeadline: z.enum(['rollback', 'promote']).default('rollback'),
  thresholds: ThresholdsSchema.prefault({}),
  /** `sequential`: anytime-valid tests on the lanes' counts, evidence kept over the whole canary (README); `threshold`: each check's window against `thresholds.relative`. */
  judge: z.enum(['sequential', 'threshold']).default('sequential'),
  /**
   * Gate each step on shadow divergence (@flowtag/shadow): the share (0..1) of the candidate's
   * shadow pairs in the step's window that differ from the user's answers beyond noise. A number
   * is `max`; the object also sets `minCompared` (pairs the window needs before the gate decides;
   * fewer: the check waits) and `action` on a breach. Off when absent.
   */
  maxDivergence: z.union([
    ratio,
    z.strictObject({ max: ratio, minCompared: z.number().int().min(1).max(1e9).default(100), action: BreachAction.default('pause') })
  ]).optional().transform((d) => (d === undefined ? undefined : typeof d === 'number' ? { max: d, minCompared: 100, action: 'pause' as const } : d)),
  /** Options of the sequential judge. */
  sequential: SequentialSpecSchema.prefault({}),
  /** The RuleSet in the config center that the steps are published to. */
  rules: z.strictObject({ dataId: z.string().min(1).default('flowtag-rules.json'), group: z.string().min(1).default('FLOWTAG') }).prefault({}),
  /** Sticky key of the canary split (default: the RuleSet's `user`, else per request). */
  splitKey: KeySourceSchema.optional(),
  /** Services whose instances must report a step's rule version before it is judged (default: `service`). */
  convergence: z.array(z.string().min(1)).min(1).optional(),
  webhooks: z.strictObject({
    /** Asked (POST, 2xx = yes) before each promotion to a further step. */
    confirmPromotion: z.url().optional(),
    /** Told (POST) of every step, alert, pause, resume, promotion and rollback. */
    events: z.array(z.url()).max(20).default([]),
    timeoutMs: ms(60_000).default(5000)
  }).prefault({}),
  /** Step hooks (`beforeStep`, `afterStep`, `onAbort`, `timeoutMs`): each answers continue, pause or abort; a failing hook pauses (hooks.ts). */
  hooks: HooksSpecSchema.prefault({}),
  /** Path of the instances' Prometheus text (its requests, the scrapes, are never a lane's traffic). */
  metricsPath: z.string().startsWith('/').default('/metrics'),
  /** Routes (`http.route`) whose requests are no lane's traffic besides `metricsPath`: the probes. */
  excludeRoutes: z.array(z.string().startsWith('/')).max(100).default(['/health', '/ready']),
  /**
   * Services whose outbound metrics (@flowtag/outbound) count the calls to `service` they saw
   * fail, in the lanes' figures (default: the `convergence` services other than `service`).
   */
  callers: z.array(z.string().min(1)).max(50).optional(),
  /** Read the lanes' figures from this Prometheus (`{ url, matchers?, serviceLabel?, laneLabel?, instanceLabel? }`) instead of scraping the instances. */
  prometheus: PrometheusSpecSchema.optional()
}).superRefine((s, ctx) => {
  if ((s.service === undefined) === (s.lane === undefined)) {
    ctx.addIssue({ code: 'custom', path: [s.service === undefined ? 'service' : 'lane'], message: 'give exactly one of service (one service) or lane (every service in the lane)' })
  }
  if (s.lane !== undefined && s.candidate !== undefined && s.candidate !== s.lane) ctx.addIssue({ code: 'custom', path: ['candidate'], message: `must be the lane ("${s.lane}") or left out` })
  if (s.lane === undefined && s.candidate === undefined) ctx.addIssue({ code: 'custom', path: ['candidate'], message: 'required with service' })
  if (s.lane === undefined && s.services.length > 0) ctx.addIssue({ code: 'custom', path: ['services'], message: 'only with lane' })
  if (s.lane === undefined && s.exclude.length > 0) ctx.addIssue({ code: 'custom', path: ['exclude'], message: 'only with lane' })
  const candidate = s.candidate ?? s.lane
  if (candidate === s.stable) ctx.addIssue({ code: 'custom', path: [s.lane === undefined ? 'candidate' : 'lane'], message: 'must differ from stable' })
}).transform((s) => ({ ...s, candidate: (s.candidate ?? s.lane)! }))

export type CanarySpec = z.output<typeof CanarySpecSchema>

/**
 * The name a canary is known by: its service, or `lane:<lane>` for a lane canary (its state
 * document, `flowtag canary status lane:v2`, the dashboard).
 */
export function canaryKey (spec: Pick<CanarySpec, 'service' | 'lane'>): string {
  return spec.service ?? `lane:${spec.lane!}`
}
export type CanarySpecInput = z.input<typeof CanarySpecSchema>

/**
 * Validate a Canary spec and fill in the defaults.
 * @throws {CanaryError} `FLOWTAG_CANARY_BAD_OPTION` naming the field (`steps.2`, `thresholds.p99.maxSeconds`).
 */
export function parseCanarySpec (input: unknown): CanarySpec {
  const parsed = CanarySpecSchema.safeParse(input)
  if (!parsed.success) throw new CanaryError(errorCodes.BAD_OPTION, optionErrorMessage(PACKAGE, parsed.error))
  return parsed.data
}
