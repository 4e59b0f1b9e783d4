// The canary controller: publishes each step's RuleSet, waits until every instance applies it,
// judges the candidate against stable once the step has its minimum requests, and moves on,
// pauses or rolls back. Every decision lands in the audit trail with its numbers, and the state
// in Nacos config, so a restarted controller resumes where it was.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Instance, NacosClient } from '@flowtag/nacos'
import { checkPublish, parseRuleSet, RULES_VERSION_METADATA, RulesError, type RuleSet } from '@flowtag/rules'
import { CanaryError, errorCodes } from './errors.ts'
import { gate, judge, pct, sec, type Judgement } from './judge.ts'
import { withDivergence } from './divergence.ts'
import { rollbackRuleSet, stepRuleSet } from './rollout.ts'
import { PrometheusSource } from './prometheus.ts'
import { laneCatalog, laneJudgement, laneMembers, warmingInstances, withWarmup, type LaneMember, type ServiceJudgement } from './lane.ts'
import { ServiceTrack } from './service-track.ts'
import { laneWindow, ScrapeSource, type MetricsSource, type Reading } from './scrape.ts'
import { readingProblem, WindowTracker } from './tracker.ts'
import { canaryKey, parseCanarySpec, type CanarySpec } from './spec.ts'
import { StateStore, TERMINAL, type AuditEntry, type CanaryCommand, type CanaryState, type LaneServiceState, type Phase } from './state.ts'
import { confirm, notify, type CanaryEvent } from './webhooks.ts'
import { askHook, type HookName } from './hooks.ts'
import { decidesFirst, promotedRuleSet, requireCandidate, restoredRuleSet, retireList } from './lifecycle.ts'
import { addInto, emptyFigures, summarize, type Figures, type LaneWindow } from './window.ts'

/** Instance metadata key in which each instance reports the rule version it applies (@flowtag/service). */
/** Instance metadata key carrying the version of the RuleSet the instance applies (defined once in @flowtag/rules). */
export { RULES_VERSION_METADATA }

export interface ControllerLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export interface ControllerOptions {
  /** The Nacos client: config for RuleSets and state, naming for instances. Left open on close. */
  nacos: NacosClient
  /** Where lane figures come from. @default a PrometheusSource when `spec.prometheus` is set, else scraping each instance's `spec.metricsPath` */
  metrics?: MetricsSource
  /** `Authorization` header value for `spec.prometheus` (kept out of the spec, which is stored in Nacos). */
  prometheusAuthorization?: string
  /** How often the controller looks (convergence, commands, live series), ms. @default min(1000, spec.intervalMs) */
  tickMs?: number
  logger?: ControllerLogger
}

/** Convergence of the rule version in force: how many instances report it. */
export interface Convergence {
  version: number | undefined
  applied: number
  total: number
  /** instance (`ip:port`) → the version it reports (`none` when it reports none). */
  instances: Array<{ service: string, instance: string, lane: string, ruleVersion: string }>
}

/** One point of the live series: per lane (the serving instance's), since the previous point. */
export interface SeriesPoint {
  at: number
  lanes: Record<string, { requests: number, errorRate: number, p99: number | undefined }>
}

type Listener = (state: CanaryState) => void
const SERIES = 300
/** Clock skew tolerated between a command's sender and the controller when judging its expiry. */
const COMMAND_SKEW_MS = 30_000
const silent: ControllerLogger = { info () {}, warn () {} }

/**
 * Runs one canary (a service's candidate, or a whole lane) to its end: publishes each step's
 * RuleSet to the Nacos config center, waits until the instances apply it, judges the candidate
 * against the stable lane over each window (sequential test, latency, callers' failures, custom
 * metrics), then advances, pauses, promotes or rolls the lane back as one. Its state lives in
 * Nacos, so another process can `resume` it. Create with {@link CanaryController.start} or
 * {@link CanaryController.resume}; the constructor is private.
 *
 * `state` is the `CanaryState` (phase, step, weight, history); `done` resolves with the final one;
 * `command('promote' | 'pause' | 'resume' | 'abort', by?)` acts as a person; `close()` stops
 * watching (the canary stays where it is in Nacos).
 * @throws {CanaryError} from `start`: `FLOWTAG_CANARY_BAD_OPTION` (the field named),
 *   `FLOWTAG_CANARY_NO_RULES`, `FLOWTAG_CANARY_NO_CANDIDATE`, `FLOWTAG_CANARY_CONFLICT` (one
 *   running already)
 * @see packages/canary/README.md
 */
export class CanaryController {
  /** The canary's key: its service, or `lane:<lane>` for a lane canary. */
  readonly service: string
  readonly #nacos: NacosClient
  readonly #store: StateStore
  readonly #metrics: MetricsSource
  readonly #tickMs: number
  readonly #log: ControllerLogger
  readonly #listeners = new Set<Listener>()
  readonly #series: SeriesPoint[] = []
  #state: CanaryState
  /** Each judged service's window, readings and evidence: the spec's service, or the lane's services. */
  readonly #tracks = new Map<string, ServiceTrack>()
  /** A lane canary's services found in Nacos (at the last look), and the services it looks at. */
  #members: LaneMember[] = []
  #catalog: string[] | undefined
  /** Each looked-at service's instances at the last look (warm-up). */
  readonly #listed = new Map<string, Instance[]>()
  #nextCheckAt = 0
  #convergence: Convergence = { version: undefined, applied: 0, total: 0, instances: [] }
  #lastJudgement: Judgement | undefined
  #local: Array<{ command: CanaryCommand['command'], by: string, done: (err?: Error) => void }> = []
  #wake: (() => void) | undefined
  #closed = false
  #dirty = false
  readonly done: Promise<CanaryState>

  private constructor (state: CanaryState, options: ControllerOptions) {
    this.service = canaryKey(state.spec)
    this.#state = state
    if (state.spec.service !== undefined) this.#tracks.set(state.spec.service, new ServiceTrack(state.spec.service))
    this.#nacos = options.nacos
    this.#store = new StateStore(options.nacos.config, state.spec.rules.group)
    const prometheus = state.spec.prometheus
    const spec = state.spec
    this.#metrics = options.metrics ?? (prometheus === undefined
      ? new ScrapeSource({ discovery: options.nacos.naming, metricsPath: spec.metricsPath, excludeRoutes: spec.excludeRoutes })
      : new PrometheusSource({ ...prometheus, excludeRoutes: [spec.metricsPath, ...spec.excludeRoutes], ...(options.prometheusAuthorization === undefined ? {} : { authorization: options.prometheusAuthorization }) }))
    this.#tickMs = options.tickMs ?? Math.min(1000, state.spec.intervalMs)
    this.#log = options.logger ?? silent
    this.done = this.#run()
    this.done.catch(() => {})
  }

  /**
   * Start a canary: validates the spec, refuses when one is already running for the service,
   * publishes the first step and runs until promoted, rolled back or aborted (`done`).
   * @throws {CanaryError} `FLOWTAG_CANARY_BAD_OPTION` naming the field; `FLOWTAG_CANARY_CONFLICT`; `FLOWTAG_CANARY_NO_RULES`;
   *   `FLOWTAG_CANARY_NO_CANDIDATE` when no instance of the service is registered in the candidate lane.
   */
  static async start (specInput: unknown, options: ControllerOptions): Promise<CanaryController> {
    const spec = parseCanarySpec(specInput)
    const store = new StateStore(options.nacos.config, spec.rules.group)
    const key = canaryKey(spec)
    const existing = await store.load(key)
    if (existing !== undefined && !TERMINAL.has(existing.phase)) {
      throw new CanaryError(errorCodes.CONFLICT, `@flowtag/canary: a canary of "${key}" is ${existing.phase} at step ${existing.step + 1}; resume or abort it first`)
    }
    const rules = await readRules(options.nacos, spec) // fail now, not at the first step
    const changes = await requireCandidate(options.nacos, spec, rules) // nothing to judge without a candidate
    const now = Date.now()
    const state: CanaryState = {
      spec,
      phase: 'converging',
      step: -1,
      weight: 0,
      ruleVersion: undefined,
      startedAt: now,
      stepStartedAt: now,
      publishedAt: now,
      passedChecks: 0,
      failedChecks: 0,
      updatedAt: now,
      history: []
    }
    const lastCommand = await store.readCommand(key)
    if (lastCommand !== undefined) state.lastCommandId = lastCommand.id
    const c = new CanaryController(state, options)
    const what = spec.service === undefined ? `lane canary of ${spec.candidate}: every service with ${spec.candidate} instances` : `canary of ${spec.service}: ${spec.candidate}`
    // Which services' lanes the steps change (the RuleSet declares the candidate in each).
    c.#audit('start', `${what} against ${spec.stable}, steps ${spec.steps.join(', ')}%; the steps change the lanes of ${changes.join(', ')}`, spec.lane === undefined ? { spec } : { spec, services: changes })
    return c
  }

  /**
   * Take over the canary of `service` where its state in Nacos says it is (after a restart).
   * @throws {CanaryError} `FLOWTAG_CANARY_CONFLICT` when there is none, or it has ended.
   */
  static async resume (service: string, options: ControllerOptions & { group?: string }): Promise<CanaryController> {
    const store = new StateStore(options.nacos.config, options.group ?? 'FLOWTAG')
    const state = await store.load(service)
    if (state === undefined) throw new CanaryError(errorCodes.CONFLICT, `@flowtag/canary: no canary of "${service}" to resume`)
    if (TERMINAL.has(state.phase)) throw new CanaryError(errorCodes.CONFLICT, `@flowtag/canary: the canary of "${service}" has ended (${state.phase})`)
    const c = new CanaryController(state, options)
    c.#audit('restart', `controller took over at step ${state.step + 1} (${state.phase}); the step's window starts again`)
    return c
  }

  get state (): CanaryState { return this.#state }
  get convergence (): Convergence { return this.#convergence }
  get series (): readonly SeriesPoint[] { return this.#series }
  get lastJudgement (): Judgement | undefined { return this.#lastJudgement }

  /** Called after every change of state. Returns the unsubscribe function. */
  onUpdate (listener: Listener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /**
   * Apply a command now (the dashboard, a test): `promote` moves to the next step without waiting
   * for the analysis (the person confirms), `pause`/`resume` hold and release, `abort` rolls back.
   * @throws {CanaryError} `FLOWTAG_CANARY_BAD_STATE` when the canary has ended.
   */
  command (command: CanaryCommand['command'], by = 'api'): Promise<void> {
    if (TERMINAL.has(this.#state.phase) || this.#closed) {
      return Promise.reject(new CanaryError(errorCodes.BAD_STATE, `@flowtag/canary: the canary of "${this.service}" has ended (${this.#state.phase})`))
    }
    return new Promise((resolve, reject) => {
      this.#local.push({ command, by, done: (err) => (err === undefined ? resolve() : reject(err)) })
      this.#wake?.()
    })
  }

  /** Stop watching (the state stays in Nacos: `resume` continues). Idempotent. */
  async close (): Promise<void> {
    this.#closed = true
    this.#wake?.()
    await this.done.catch(() => {})
  }

  async #run (): Promise<CanaryState> {
    while (!this.#closed && !TERMINAL.has(this.#state.phase)) {
      try {
        await this.#tick()
      } catch (err) {
        this.#log.warn({ err, service: this.service }, 'flowtag canary: tick failed; trying again')
      }
      if (this.#dirty) await this.#save()
      if (TERMINAL.has(this.#state.phase) || this.#closed) break
      const ac = new AbortController()
      this.#wake = () => ac.abort()
      await sleep(this.#tickMs, undefined, { signal: ac.signal }).catch(() => {})
      this.#wake = undefined
    }
    for (const l of this.#local.splice(0)) l.done(new CanaryError(errorCodes.BAD_STATE, `@flowtag/canary: the canary has ended (${this.#state.phase})`))
    if (this.#dirty) await this.#save()
    return this.#state
  }

  async #save (): Promise<void> {
    try {
      await this.#store.save(this.#state)
      this.#dirty = false
    } catch (err) {
      this.#log.warn({ err, service: this.service }, 'flowtag canary: cannot save state; will retry')
    }
  }

  async #tick (): Promise<void> {
    await this.#commands()
    const s = this.#state
    if (TERMINAL.has(s.phase)) return
    const now = Date.now()
    if (s.step < 0) {
      // canaryops: the first step goes through #advance, so its before-step hook is asked (again every interval while it pauses)
      if ((s.phase === 'paused' && s.pausedBy !== 'hook') || now < this.#nextCheckAt) return
      this.#nextCheckAt = now + s.spec.intervalMs
      await this.#advance('start')
      return
    }
    await this.#updateConvergence()
    await this.#sample()
    if (now - s.startedAt > s.spec.deadlineMs) {
      await this.#deadline(`overall deadline of ${s.spec.deadlineMs} ms passed`)
      return
    }
    if (s.phase === 'converging') {
      await this.#checkConvergence(now)
      return
    }
    if (s.phase === 'paused' && s.pausedBy !== 'analysis' && s.pausedBy !== 'hook') return
    if (now < this.#nextCheckAt) return
    // Anchored to the step's start, so late ticks do not push every later check back.
    this.#nextCheckAt += s.spec.intervalMs
    if (this.#nextCheckAt <= now) this.#nextCheckAt = now + s.spec.intervalMs
    if (s.phase === 'paused' && s.pausedBy === 'hook') {
      await this.#advance('asking the hooks again') // canaryops: a hook's pause asks again every interval
      return
    }
    if (s.phase === 'awaiting-confirmation') {
      await this.#advance('confirmed by the webhook')
      return
    }
    await this.#check(now)
  }

  async #commands (): Promise<void> {
    const remote = await this.#store.readCommand(this.service).catch(() => undefined)
    if (remote !== undefined && remote.id !== this.#state.lastCommandId) {
      this.#state.lastCommandId = remote.id
      this.#dirty = true
      // A command its sender gave up on (withdrawn, or past its expiry) is not applied: a resumed
      // controller must not act on a `promote` typed hours ago that nobody applied then.
      const stale = remote.withdrawn === true
        ? 'withdrawn by its sender'
        : remote.expiresAt !== undefined && Date.now() > Date.parse(remote.expiresAt) + COMMAND_SKEW_MS ? `expired at ${remote.expiresAt}` : undefined
      if (stale !== undefined) this.#audit('command', `${remote.command} by ${remote.by ?? 'cli'} (sent at ${remote.at}) not applied: ${stale}`)
      else await this.#apply(remote.command, remote.by ?? 'cli').catch((err: Error) => this.#audit('command', `${remote.command} refused: ${err.message}`))
    }
    for (const l of this.#local.splice(0)) {
      try {
        await this.#apply(l.command, l.by)
        l.done()
      } catch (err) {
        l.done(err as Error)
      }
    }
  }

  async #apply (command: CanaryCommand['command'], by: string): Promise<void> {
    const s = this.#state
    if (TERMINAL.has(s.phase)) throw new CanaryError(errorCodes.BAD_STATE, `the canary has ended (${s.phase})`)
    if (command === 'abort') {
      await this.#rollback('aborted', `aborted by ${by}`)
    } else if (command === 'pause') {
      s.phase = 'paused'
      s.pausedBy = 'user'
      this.#audit('pause', `paused by ${by}`)
      await this.#notify('pause', `paused by ${by}`)
    } else if (command === 'resume') {
      if (s.phase !== 'paused') throw new CanaryError(errorCodes.BAD_STATE, `not paused (${s.phase})`)
      if (s.pausedBy === 'hook') {
        // canaryops: a person's resume answers for the hook that paused: the held move goes on
        this.#audit('resume', `resumed by ${by}: going on past the hook's pause`)
        await this.#advance(`resumed by ${by}`, true)
        return
      }
      s.phase = s.pausedBy === 'convergence' ? 'converging' : 'waiting'
      if (s.pausedBy === 'convergence') s.publishedAt = Date.now()
      delete s.pausedBy
      s.failedChecks = 0
      this.#nextCheckAt = Date.now() + s.spec.intervalMs
      this.#audit('resume', `resumed by ${by}`)
      await this.#notify('resume', `resumed by ${by}`)
    } else {
      // a person's promotion is the confirmation: no analysis, no gate
      await this.#advance(`promoted by ${by}`, true)
    }
  }

  async #publishStep (index: number): Promise<void> {
    const s = this.#state
    const current = await readRules(this.#nacos, s.spec)
    const version = Math.max(current.version, s.ruleVersion ?? 0) + 1
    const weight = s.spec.steps[index]!
    if (s.spec.lane !== undefined) await this.#updateConvergence() // the lane's services, to declare the candidate in each
    const next = stepRuleSet(current, { ...s.spec, services: this.#members.map((m) => m.service) }, weight, version)
    await publishRules(this.#nacos, s.spec, next, current)
    // canaryops: what rollback restores, and whether a user rule leaves the candidate no traffic
    if (index === 0) s.before ??= current
    const blocker = decidesFirst(next, s.spec.candidate)
    if (blocker === undefined) delete s.blockedBy
    else s.blockedBy = blocker
    const now = Date.now()
    Object.assign(s, { step: index, weight, ruleVersion: version, phase: 'converging' satisfies Phase, publishedAt: now, stepStartedAt: now, passedChecks: 0, failedChecks: 0 })
    delete s.pausedBy
    for (const t of this.#tracks.values()) t.window = undefined
    this.#audit('step', `step ${index + 1}/${s.spec.steps.length}: ${s.spec.candidate} at ${weight}% (rule version ${version})${blocker === undefined ? '' : `; ${blockedText(blocker, s.spec.candidate)}`}`)
    await this.#notify('step', `${s.spec.candidate} at ${weight}%`)
  }

  /** Re-read which instances apply the rule version in force (the loop does it every tick; after the end, callers do). */
  refreshConvergence (): Promise<void> {
    return this.#updateConvergence()
  }

  async #updateConvergence (): Promise<void> {
    const s = this.#state
    const spec = s.spec
    let services = spec.convergence ?? [spec.service!]
    if (spec.lane !== undefined) {
      // The lane's services: those looked at (the RuleSet's, the spec's) with an instance in the lane.
      if (this.#catalog === undefined) {
        const rules = await readRules(this.#nacos, spec).catch(() => undefined)
        if (rules !== undefined) this.#catalog = laneCatalog(rules, spec)
      }
      const listed = new Map<string, Instance[]>()
      for (const service of this.#catalog ?? laneCatalog(undefined, spec)) listed.set(service, await this.#nacos.naming.instances(service))
      for (const [service, list] of listed) this.#listed.set(service, list)
      this.#members = laneMembers(listed, spec.candidate)
      for (const m of this.#members) {
        const t = this.#tracks.get(m.service)
        if (t === undefined) this.#tracks.set(m.service, new ServiceTrack(m.service, m.kind))
        else t.kind = m.kind
      }
      services = [...new Set([...(spec.convergence ?? []), ...this.#members.map((m) => m.service)])]
    }
    const instances: Convergence['instances'] = []
    for (const service of services) {
      const list = await this.#nacos.naming.instances(service)
      this.#listed.set(service, list)
      for (const i of list) {
        instances.push({ service, instance: `${i.ip}:${i.port}`, lane: i.metadata.version ?? 'none', ruleVersion: i.metadata[RULES_VERSION_METADATA] ?? 'none' })
      }
    }
    const version = s.ruleVersion
    const applied = version === undefined ? 0 : instances.filter((i) => Number(i.ruleVersion) >= version).length
    this.#convergence = { version, applied, total: instances.length, instances }
  }

  async #checkConvergence (now: number): Promise<void> {
    const s = this.#state
    const c = this.#convergence
    // A candidate that has no instance yet (still starting, or not in the cache) is not converged.
    const hasCandidate = s.spec.lane === undefined
      ? c.instances.some((i) => i.service === s.spec.service && i.lane === s.spec.candidate)
      : this.#members.length > 0
    const converged = c.total > 0 && c.applied === c.total && hasCandidate
    if (converged) {
      // Every judged service's window starts at a reading: without one (the source failed) the
      // step stays converging, and the convergence timeout below still bounds it.
      const tracks = [...this.#tracks.values()]
      const baselines = await Promise.all(tracks.map(async (t) => {
        try {
          const r = await this.#read(t)
          t.readError = undefined
          return r
        } catch (err) {
          t.readError = err as Error
          this.#log.warn({ err, service: t.service }, 'flowtag canary: cannot read the metrics the step\'s window starts from')
          return undefined
        }
      }))
      const baseline = baselines.every((b) => b !== undefined) ? baselines[0] : undefined
      if (baseline !== undefined) {
        tracks.forEach((t, i) => {
          t.window = new WindowTracker(baselines[i]!)
          t.previous = baselines[i]!
        })
        s.phase = 'waiting'
        s.stepStartedAt = baseline.at
        this.#nextCheckAt = baseline.at + s.spec.intervalMs
        this.#audit('converged', `rule version ${c.version} on ${c.applied} of ${c.total} instances after ${baseline.at - s.publishedAt} ms; the step's window starts`)
        return
      }
    }
    if (now - s.publishedAt > s.spec.convergenceTimeoutMs) {
      s.phase = 'paused'
      s.pausedBy = 'convergence'
      const readError = [...this.#tracks.values()].find((t) => t.readError !== undefined)?.readError
      // The instances that lag, named (at most 10): an instance that reports no rule version at all
      // does not read the RuleSet (a service started without `rules`), and never will.
      const behind = c.instances.filter((i) => c.version === undefined || !(Number(i.ruleVersion) >= c.version))
      const lagging = behind.length === 0 ? '' : `; behind: ${behind.slice(0, 10).map((i) => `${i.service} ${i.instance} (${i.ruleVersion === 'none' ? 'reports no rule version: does it read the RuleSet?' : `rule version ${i.ruleVersion}`})`).join(', ')}${behind.length > 10 ? `, and ${behind.length - 10} more` : ''}`
      const why = converged ? `converged, but no metrics to start the step's window from (${readError?.message ?? 'read failed'})` : `rule version ${c.version} on ${c.applied} of ${c.total} instances${lagging}${hasCandidate ? '' : `, no ${s.spec.candidate} instance of ${s.spec.service ?? `any service looked at (${(this.#catalog ?? []).join(', ') || 'none'})`}`}`
      const message = `${why} after ${s.spec.convergenceTimeoutMs} ms: ${converged ? 'no window to judge' : 'not judging an unconverged step'}`
      this.#audit('pause', message, { instances: c.instances })
      await this.#notify('pause', message)
    }
  }

  /**
   * Services whose failed calls to `service` count: `spec.callers`, else the convergence services
   * (and, in a lane canary, the lane's other services) but `service`.
   */
  #callers (service: string): string[] {
    const spec = this.#state.spec
    return spec.callers ?? [...new Set([...(spec.convergence ?? []), ...this.#members.map((m) => m.service)])].filter((c) => c !== service)
  }

  /**
   * One reading of a judged service from the source, checked: a figure from any source that is not
   * a finite number ≥ 0 makes it invalid (rejected: no data, never judged).
   */
  async #read (track: ServiceTrack): Promise<Reading> {
    const reading = await this.#metrics.read(track.service, { callers: this.#callers(track.service) })
    const problem = readingProblem(reading)
    if (problem !== undefined) throw new Error(`invalid figures from the metrics source: ${problem}`)
    return reading
  }

  async #sample (): Promise<void> {
    const s = this.#state
    const lanes = new Map<string, Figures>()
    let at: number | undefined
    await Promise.all([...this.#tracks.values()].map(async (t) => {
      let reading: Reading
      try {
        reading = await this.#read(t)
      } catch (err) {
        t.readError = err as Error
        this.#log.warn({ err, service: t.service }, 'flowtag canary: reading metrics failed')
        return
      }
      t.readError = undefined
      if (t.previous !== undefined) {
        at = Math.max(at ?? 0, reading.at)
        for (const [lane, f] of laneWindow(reading, t.previous)) {
          const sum = lanes.get(lane)
          if (sum === undefined) lanes.set(lane, f)
          else addInto(sum, f)
        }
      }
      t.previous = reading
      // After a restart (or a service that joined the lane) the window starts at the first reading.
      if (t.window !== undefined) t.window.add(reading)
      else if (s.phase !== 'converging') t.window = new WindowTracker(reading)
    }))
    if (at !== undefined) {
      const point: SeriesPoint['lanes'] = {}
      for (const [lane, f] of lanes) {
        const w = summarize(f)
        point[lane] = { requests: w.requests, errorRate: w.errorRate, p99: w.p99 }
      }
      this.#series.push({ at, lanes: point })
      if (this.#series.length > SERIES) this.#series.shift()
    }
  }

  /** The sequential judge on the step's window: its lanes' figures, and the failed calls only their callers saw. */
  #sequentialCheck (track: ServiceTrack, spec: CanarySpec, reading: Reading, window: WindowTracker): Judgement {
    const lanes = new Map<string, Figures>()
    const unseen = new Map<string, number>()
    for (const lane of [spec.candidate, spec.stable]) {
      const w = window.figures(lane)
      lanes.set(lane, w.figures)
      unseen.set(lane, w.unseen)
    }
    return track.sequential.check(spec, reading, lanes, window.opening, { window, unseen })
  }

  /** One service's judgement of this check (no data is no data: the last good reading is not judged as if it were now). */
  #judgeService (track: ServiceTrack, now: number): ServiceJudgement & { window: WindowTracker | undefined, reading: Reading | undefined } {
    const spec = this.#state.spec
    const window = track.readError === undefined ? track.window : undefined
    const reading = window === undefined ? undefined : track.previous
    const candidate = window?.lane(spec.candidate) ?? summarize(emptyFigures())
    const stable = window?.lane(spec.stable) ?? summarize(emptyFigures())
    const j: Judgement = reading === undefined
      ? { verdict: 'waiting', reason: `no metrics: ${track.readError?.message ?? 'nothing read yet'}`, candidate, stable, breaches: [], errorRateHigh: false }
      : withDivergence(
        gate(spec, candidate, stable) ?? (spec.judge === 'sequential' ? this.#sequentialCheck(track, spec, reading, window!) : judge(spec, candidate, stable)),
        spec.maxDivergence,
        window!.shadow(spec.candidate),
        // A lane canary gates the services whose pairs some process compares; a service canary always.
        spec.lane === undefined
      )
    const warming = warmingInstances(this.#listed.get(track.service) ?? [], spec.candidate, now, spec.warmupMs)
    const judgement = withWarmup(j, warming, spec.lane === undefined ? undefined : track.service)
    track.lastJudgement = judgement
    // Who has called its candidate lane (cumulative counts): a failure passed up a call chain is not the cause.
    const callers = [...new Set([...(reading?.callers?.values() ?? [])].filter((c) => (c.calls?.get(spec.candidate)?.requests ?? 0) > 0).map((c) => c.service))]
    return { service: track.service, judgement, warming, callers, window, reading }
  }

  async #check (now: number): Promise<void> {
    const s = this.#state
    const spec = s.spec
    const judged = [...this.#tracks.values()].sort((a, b) => a.service.localeCompare(b.service)).map((t) => this.#judgeService(t, now))
    const j = judged.length === 0
      ? { verdict: 'waiting' as const, reason: `no service with ${spec.candidate} instances`, candidate: summarize(emptyFigures()), stable: summarize(emptyFigures()), breaches: [], errorRateHigh: false }
      : laneJudgement(judged)
    this.#lastJudgement = j
    const { candidate, stable } = j
    const decider = judged.find((x) => x.judgement.candidate === candidate)
    const window = decider?.window
    // No data at all (every service unread): the sustained-error clock neither runs on nor restarts.
    const reading = judged.some((x) => x.reading !== undefined) ? decider?.reading ?? judged.find((x) => x.reading !== undefined)?.reading : undefined
    const data: Record<string, unknown> = { verdict: j.verdict, candidate: figures(candidate), stable: figures(stable), breaches: j.breaches, windowMs: now - (window?.openedAt ?? s.stepStartedAt) }
    if (spec.lane !== undefined) {
      const services: LaneServiceState[] = judged.map((x) => ({
        service: x.service,
        kind: this.#tracks.get(x.service)?.kind ?? 'http',
        verdict: x.judgement.verdict,
        reason: x.judgement.reason,
        candidate: figures(x.judgement.candidate),
        stable: figures(x.judgement.stable),
        ...(x.warming.length === 0 ? {} : { warming: x.warming })
      }))
      const failing = 'failing' in j ? j.failing : undefined
      s.lane = { services, ...(failing === undefined ? {} : { failing }) }
      data.services = services
      if (failing !== undefined) data.failing = failing
    } else if (judged[0]!.warming.length > 0) data.warming = judged[0]!.warming

    if (reading === undefined) {
      // no data: the sustained-error clock neither runs on nor restarts
    } else if (j.errorRateHigh) {
      s.errorRateHighSince ??= now
      if (!s.alerted && now - s.errorRateHighSince >= spec.thresholds.errorRate.sustainedMs) {
        s.alerted = true
        const message = `candidate error rate ${pct(candidate.errorRate)} above ${pct(spec.thresholds.errorRate.max)} for ${now - s.errorRateHighSince} ms`
        this.#audit('alert', message, data)
        await this.#notify('alert', message, data)
      }
    } else {
      s.errorRateHighSince = undefined
      s.alerted = false
    }

    if (j.verdict === 'waiting') {
      if (s.phase !== 'paused') s.phase = 'waiting'
      this.#audit('wait', s.blockedBy === undefined ? `waiting: ${j.reason}` : `waiting, but ${blockedText(s.blockedBy, spec.candidate)} (${j.reason})`, data)
      if (now - s.stepStartedAt > spec.maxWaitMs) {
        await this.#deadline(`step ${s.step + 1} waited ${now - s.stepStartedAt} ms for ${spec.minRequests} candidate requests in a whole window (maxWaitMs ${spec.maxWaitMs}); last: ${j.reason}`)
      } else {
        for (const x of judged) {
          const partial = x.judgement.candidate.partial ?? []
          if (x.reading === undefined || x.window === undefined || partial.length === 0 || !x.window.reopenable(spec.candidate)) continue
          // Restarted (no more often than stable) or read late: every candidate instance is read
          // now, so the window starts again here and the next check judges whole figures.
          this.#tracks.get(x.service)!.window = new WindowTracker(x.reading)
          this.#audit('window', `the step's window starts again${spec.lane === undefined ? '' : ` for ${x.service}`}: ${partial.join(', ')}`)
        }
      }
      return
    }
    if (j.verdict === 'pass') {
      s.failedChecks = 0
      s.passedChecks++
      this.#audit('check', `check passed (${s.passedChecks}/${spec.checksPerStep}): ${j.reason}`, data)
      if (s.phase === 'paused') {
        delete s.pausedBy
        this.#audit('resume', 'a passing check releases the hold of the failed one')
        await this.#notify('resume', 'check passed again')
      }
      s.phase = 'analysing'
      if (s.passedChecks >= spec.checksPerStep) await this.#advance('analysis passed')
      return
    }
    s.failedChecks++
    s.passedChecks = 0
    this.#audit('check', `check failed (${s.failedChecks}/${spec.failedChecks}): ${j.reason}`, data)
    if (j.breaches.some((b) => b.action === 'rollback')) {
      await this.#rollback('rolled-back', `rolled back: ${j.reason}`, data)
    } else if (s.failedChecks >= spec.failedChecks) {
      await this.#rollback('rolled-back', `rolled back after ${s.failedChecks} failed checks: ${j.reason}`, data)
    } else if (s.phase !== 'paused') {
      s.phase = 'paused'
      s.pausedBy = 'analysis'
      const message = `paused at ${s.weight}%: ${j.reason}`
      this.#audit('pause', message, data)
      await this.#notify('pause', message, data)
    }
  }

  async #advance (why: string, confirmed = false): Promise<void> {
    const s = this.#state
    const next = s.step + 1
    // canaryops: the step hooks (a person's promotion or resume answers for them)
    if (!confirmed && s.step >= 0 && !(await this.#hook('after-step', s.step, why))) return
    if (next >= s.spec.steps.length) {
      await this.#promote(`${s.spec.candidate} promoted at ${s.weight}% (${why})`)
      return
    }
    const gate = s.spec.webhooks.confirmPromotion
    if (!confirmed && s.step >= 0 && gate !== undefined && !(await confirm(gate, this.#event('confirm', `to ${s.spec.steps[next]}%`), s.spec.webhooks.timeoutMs))) {
      if (s.phase !== 'awaiting-confirmation') this.#audit('confirm', `the confirm-promotion gate did not say yes to ${s.spec.steps[next]}%; asking again every interval`)
      s.phase = 'awaiting-confirmation'
      return
    }
    if (!confirmed && !(await this.#hook('before-step', next, why))) return
    if (s.step >= 0) this.#audit('promote', `to step ${next + 1}: ${why}`)
    await this.#publishStep(next)
  }

  /**
   * canaryops: ask a step hook (hooks.ts). True to go on; on pause the canary holds (asked again
   * every interval), on abort it is aborted. No hook configured: true.
   */
  async #hook (hook: 'before-step' | 'after-step', step: number, why: string): Promise<boolean> {
    const s = this.#state
    const hooks = hooksOf(s)
    const url = hook === 'before-step' ? hooks?.beforeStep : hooks?.afterStep
    if (hooks === undefined || url === undefined) return true
    const answer = await askHook(url, this.#hookRequest(hook, step, why), hooks.timeoutMs)
    if (answer.outcome === 'continue') {
      if (s.phase === 'paused' && s.pausedBy === 'hook') {
        delete s.pausedBy
        s.phase = 'waiting'
        this.#audit('resume', answer.reason)
        await this.#notify('resume', answer.reason)
      }
      return true
    }
    if (answer.outcome === 'abort') {
      await this.#rollback('aborted', `aborted: ${answer.reason}`)
      return false
    }
    if (s.phase !== 'paused' || s.pausedBy !== 'hook') {
      s.phase = 'paused'
      s.pausedBy = 'hook'
      const message = `paused at ${s.weight}% before ${hook === 'before-step' ? `step ${step + 1}` : 'going on'}: ${answer.reason}; asking again every interval`
      this.#audit('pause', message)
      await this.#notify('pause', message)
    } else {
      this.#audit('hook', answer.reason)
    }
    return false
  }

  #hookRequest (hook: HookName, step: number, message: string): Parameters<typeof askHook>[1] {
    const s = this.#state
    const index = Math.max(0, step)
    return {
      hook,
      canary: { service: canaryKey(s.spec), candidate: s.spec.candidate, stable: s.spec.stable, phase: s.phase, startedAt: new Date(s.startedAt).toISOString() },
      step: { index: index + 1, of: s.spec.steps.length, weight: hook === 'before-step' ? s.spec.steps[index]! : s.weight, ruleVersion: s.ruleVersion ?? null },
      message
    }
  }

  /** canaryops: the promotion's end (lifecycle.ts): the candidate becomes the stable lane; the old lane's instances are listed to retire. */
  async #promote (message: string): Promise<void> {
    const s = this.#state
    const current = await readRules(this.#nacos, s.spec)
    const version = Math.max(current.version, s.ruleVersion ?? 0) + 1
    const services = s.spec.lane === undefined ? [s.spec.service!] : this.#members.map((m) => m.service)
    await publishRules(this.#nacos, s.spec, promotedRuleSet(current, { ...s.spec, services }, version), current)
    await this.#updateConvergence().catch(() => {})
    s.retire = retireList(this.#convergence.instances, canaryKey(s.spec), s.spec.stable, services)
    Object.assign(s, { phase: 'promoted' satisfies Phase, weight: 100, ruleVersion: version })
    delete s.pausedBy
    const left = s.retire.instances.length === 0 ? 'no instance left to retire' : `ready to retire: ${s.retire.instances.length} ${s.spec.stable} instance(s) of ${services.join(', ')} (${s.retire.instances.join(', ')})`
    this.#audit('promote', `${message}; rule version ${version} makes ${s.spec.candidate} the stable lane of ${services.join(', ')}; ${left}`, { retire: s.retire })
    await this.#notify('promote', message)
  }

  async #deadline (why: string): Promise<void> {
    const s = this.#state
    this.#audit('deadline', why)
    await this.#notify('deadline', why)
    if (s.spec.onDeadline === 'promote') {
      await this.#promote(`${s.spec.candidate} promoted by the deadline policy (onDeadline: promote)`)
    } else {
      await this.#rollback('rolled-back', `rolled back: ${why} (onDeadline: rollback)`)
    }
  }

  async #rollback (phase: 'rolled-back' | 'aborted', message: string, data?: Record<string, unknown>): Promise<void> {
    const s = this.#state
    const current = await readRules(this.#nacos, s.spec)
    const version = Math.max(current.version, s.ruleVersion ?? 0) + 1
    // canaryops: the user's RuleSet as it was before the canary (a state saved before that was kept: the candidate's routes removed)
    await publishRules(this.#nacos, s.spec, s.before === undefined ? rollbackRuleSet(current, s.spec, version) : restoredRuleSet(s.before, version))
    Object.assign(s, { phase, weight: 0, ruleVersion: version })
    delete s.pausedBy
    // The services judged in the lane (a crash-looping one may be between lives, unlisted, right now).
    const judged = [...this.#tracks.keys()].sort()
    const where = s.spec.lane === undefined ? '' : ` in any service (the whole lane${judged.length === 0 ? '' : `: ${judged.join(', ')}`})`
    const restored = s.before === undefined ? '' : ': the RuleSet as it was before the canary'
    this.#audit(phase === 'aborted' ? 'abort' : 'rollback', `${message}; rule version ${version} sends no request to ${s.spec.candidate}${where}${restored}`, data)
    await this.#notify(phase === 'aborted' ? 'abort' : 'rollback', message, data)
    const hooks = hooksOf(s)
    if (hooks?.onAbort !== undefined) {
      const answer = await askHook(hooks.onAbort, this.#hookRequest('abort', s.step, message), hooks.timeoutMs)
      this.#audit('hook', `${answer.reason} (the rollback stands)`)
    }
  }

  #event (event: string, message: string, data?: Record<string, unknown>): CanaryEvent {
    const s = this.#state
    return { event, service: this.service, ...(s.spec.lane === undefined ? {} : { lane: s.spec.lane }), candidate: s.spec.candidate, stable: s.spec.stable, step: s.step + 1, weight: s.weight, ruleVersion: s.ruleVersion, message, ...(data === undefined ? {} : { data }) }
  }

  async #notify (event: string, message: string, data?: Record<string, unknown>): Promise<void> {
    const { events, timeoutMs } = this.#state.spec.webhooks
    if (events.length === 0) return
    const failed = await notify(events, this.#event(event, message, data), timeoutMs)
    if (failed.length > 0) this.#log.warn({ failed, event }, 'flowtag canary: webhook notification failed')
  }

  #audit (event: string, message: string, data?: Record<string, unknown>): void {
    const s = this.#state
    const entry: AuditEntry = { at: new Date().toISOString(), event, step: s.step + 1, weight: s.weight, ruleVersion: s.ruleVersion, message, ...(data === undefined ? {} : { data }) }
    s.history.push(entry)
    this.#dirty = true
    this.#log.info({ service: this.service, event, step: entry.step, weight: s.weight, ruleVersion: s.ruleVersion }, `flowtag canary: ${message}`)
    for (const l of [...this.#listeners]) {
      try {
        l(s)
      } catch (err) {
        this.#log.warn({ err }, 'flowtag canary: onUpdate listener threw')
      }
    }
  }
}

function figures (w: LaneWindow): Record<string, unknown> {
  return {
    requests: w.requests,
    errorRate: round(w.errorRate),
    serverErrorRate: round(w.serverErrorRate),
    networkErrors: w.networkErrors,
    p99: w.p99 === undefined ? null : round(w.p99),
    p99Text: sec(w.p99),
    restarts: w.restarts ?? 0,
    callerFailures: w.callerFailures ?? 0,
    ...(w.partial === undefined || w.partial.length === 0 ? {} : { partial: w.partial })
  }
}

/** The spec's hooks; undefined in the state of a canary started before hooks existed (resumed). */
function hooksOf (s: CanaryState): CanarySpec['hooks'] | undefined {
  return (s.spec as Partial<CanarySpec>).hooks
}

function blockedText (rule: string, candidate: string): string {
  return `rule "${rule}" decides every request before the canary's split: no request can reach ${candidate} until it is changed or disabled`
}

function round (x: number): number {
  return Math.round(x * 1e6) / 1e6
}

/**
 * The RuleSet in force in the config center.
 * @throws {CanaryError} `FLOWTAG_CANARY_NO_RULES` when missing or invalid.
 */
export async function readRules (nacos: NacosClient, spec: Pick<CanarySpec, 'rules'>): Promise<RuleSet> {
  const raw = await nacos.config.get(spec.rules.dataId, spec.rules.group)
  if (raw === undefined || raw === '') throw new CanaryError(errorCodes.NO_RULES, `@flowtag/canary: no RuleSet at ${spec.rules.group}/${spec.rules.dataId}`)
  try {
    return parseRuleSet(raw, `${spec.rules.group}/${spec.rules.dataId}`)
  } catch (err) {
    throw new CanaryError(errorCodes.NO_RULES, `@flowtag/canary: the RuleSet in force is invalid: ${(err as RulesError).message}`, { cause: err })
  }
}

/**
 * Validate (as every instance will) and publish. With `current` (the RuleSet in force the step was
 * made from), the one publish policy of both CLIs applies first (@flowtag/rules `checkPublish`:
 * a version above it, no lapsed lease set now); a rollback passes none, so it is never refused.
 * @throws {RulesError} FLOWTAG_RULES_INVALID, FLOWTAG_RULES_PUBLISH_REFUSED, FLOWTAG_RULES_LEASE_EXPIRED
 */
export async function publishRules (nacos: NacosClient, spec: Pick<CanarySpec, 'rules'>, rs: RuleSet, current?: RuleSet): Promise<void> {
  const text = JSON.stringify(rs)
  parseRuleSet(text, 'canary step')
  if (current !== undefined) checkPublish(rs, current)
  await nacos.config.publish(spec.rules.dataId, spec.rules.group, text, 'json')
}
