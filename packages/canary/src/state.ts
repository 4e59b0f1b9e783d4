// The canary's state, kept in the Nacos config center beside the RuleSet: a restarted controller
// (or another one) resumes where it was, and the CLI reads it without a controller running.
import type { ConfigClient } from '@flowtag/nacos'
import type { RuleSet } from '@flowtag/rules'
import { canaryKey, type CanarySpec } from './spec.ts'

export type Phase =
  /** The step's RuleSet is published; waiting until every instance reports its version. */
  | 'converging'
  /** Converged; not enough candidate requests in the window yet (never a pass). */
  | 'waiting'
  /** Enough requests: each interval is a check. */
  | 'analysing'
  /** Held at the current weight: by a failed check (clears on a passing one) or by a person. */
  | 'paused'
  /** The confirm-promotion webhook has not said yes yet. */
  | 'awaiting-confirmation'
  | 'promoted'
  | 'rolled-back'
  | 'aborted'

export const TERMINAL: ReadonlySet<Phase> = new Set(['promoted', 'rolled-back', 'aborted'])

/** One decision of the controller, with the numbers it was made on. */
export interface AuditEntry {
  at: string
  /** `start`, `step`, `converged`, `check`, `wait`, `alert`, `pause`, `resume`, `confirm`, `promote`, `rollback`, `abort`, `deadline`, `restart`, `command`, `window` (the step's window starts again) */
  event: string
  step: number
  weight: number
  ruleVersion: number | undefined
  message: string
  /** The figures behind a check: per lane requests, error shares, p99, breaches. */
  data?: Record<string, unknown>
}

/** One service of a lane canary at its latest check. */
export interface LaneServiceState {
  service: string
  /** `consumer`: judged on failed / processed messages; `http`: on requests (HTTP and gRPC). */
  kind: 'http' | 'consumer'
  /** `waiting` until its first check. */
  verdict: 'waiting' | 'pass' | 'fail'
  reason: string
  /** Its candidate's and stable's figures in the step's window (requests, errorRate, p99, ...). */
  candidate?: Record<string, unknown>
  stable?: Record<string, unknown>
  /** Candidate instances still warming. */
  warming?: string[]
}

export interface CanaryState {
  spec: CanarySpec
  /** A lane canary's services at the latest check, and the one that failed the lane (if one did). */
  lane?: { services: LaneServiceState[], failing?: string }
  phase: Phase
  /**
   * Who paused: a failed check resumes by itself on a passing one, a person's pause does not; a
   * hook's pause asks the hook again every interval (a person's resume or promote answers for it).
   */
  pausedBy?: 'analysis' | 'user' | 'convergence' | 'hook'
  /** The RuleSet in force before the canary's first step: rollback and abort publish it again (lifecycle.ts). */
  before?: RuleSet
  /** A rule that decides every request before the canary's split, so no request can reach the candidate. */
  blockedBy?: string
  /** After a promotion: the old stable lane's instances, ready to retire (lifecycle.ts). */
  retire?: { service: string, lane: string, instances: string[] }
  /** Index into spec.steps; -1 before the first step is published. */
  step: number
  weight: number
  /** Version of the RuleSet this step published. */
  ruleVersion: number | undefined
  startedAt: number
  /** When the step's instances converged (its window starts then). */
  stepStartedAt: number
  /** When the current step's RuleSet was published. */
  publishedAt: number
  passedChecks: number
  failedChecks: number
  /** Since when the error share has been above thresholds.errorRate.max, for the sustained alert. */
  errorRateHighSince?: number | undefined
  alerted?: boolean
  /** The last command read from the command document (each is applied once). */
  lastCommandId?: string
  updatedAt: number
  history: AuditEntry[]
}

/** A command for a running controller, written by the CLI or the dashboard. */
export interface CanaryCommand {
  id: string
  command: 'promote' | 'pause' | 'resume' | 'abort'
  at: string
  by?: string
  /** Not applied after this (ISO time, the sender's clock, with a 30 s grace for skew): a command nobody applied in time does not run later. */
  expiresAt?: string
  /** The sender gave up waiting (its timeout) and took the command back: never applied. */
  withdrawn?: boolean
}

const HISTORY = 500

export function stateDataId (service: string): string {
  return `flowtag-canary.${service}.json`
}
export function commandDataId (service: string): string {
  return `flowtag-canary.${service}.command.json`
}

/** Reads and writes the state and command documents of one canary (by its key: the service, or `lane:<lane>`). */
export class StateStore {
  readonly #config: ConfigClient
  readonly #group: string

  constructor (config: ConfigClient, group: string) {
    this.#config = config
    this.#group = group
  }

  async load (service: string): Promise<CanaryState | undefined> {
    const raw = await this.#config.get(stateDataId(service), this.#group)
    return raw === undefined || raw === '' ? undefined : JSON.parse(raw) as CanaryState
  }

  async save (state: CanaryState): Promise<void> {
    state.updatedAt = Date.now()
    if (state.history.length > HISTORY) state.history.splice(0, state.history.length - HISTORY)
    await this.#config.publish(stateDataId(canaryKey(state.spec)), this.#group, JSON.stringify(state), 'json')
  }

  async readCommand (service: string): Promise<CanaryCommand | undefined> {
    const raw = await this.#config.get(commandDataId(service), this.#group)
    if (raw === undefined || raw === '') return undefined
    try {
      return JSON.parse(raw) as CanaryCommand
    } catch {
      return undefined
    }
  }

  /** Write a command for the running controller; with `ttlMs`, it expires (is never applied) that long after now. */
  async sendCommand (service: string, command: CanaryCommand['command'], by = 'cli', ttlMs?: number): Promise<CanaryCommand> {
    const now = Date.now()
    const c: CanaryCommand = { id: `${now}-${Math.random().toString(36).slice(2, 8)}`, command, at: new Date(now).toISOString(), by, ...(ttlMs === undefined ? {} : { expiresAt: new Date(now + ttlMs).toISOString() }) }
    await this.#config.publish(commandDataId(service), this.#group, JSON.stringify(c), 'json')
    return c
  }

  /** Take back a command nobody applied (unless another one replaced it meanwhile): no controller applies it later. */
  async withdrawCommand (service: string, sent: CanaryCommand): Promise<void> {
    const current = await this.readCommand(service)
    if (current !== undefined && current.id !== sent.id) return
    await this.#config.publish(commandDataId(service), this.#group, JSON.stringify({ ...sent, withdrawn: true }), 'json')
  }
}
