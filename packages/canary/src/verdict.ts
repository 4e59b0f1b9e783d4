// The canary's verdict in one word, for controllers that decide for themselves (Argo Rollouts'
// web metric, Flagger's gates): `pass`, `fail`, or `inconclusive`. Waiting for traffic, for
// convergence, a hold or no data is inconclusive, never a pass.
import { canaryKey } from './spec.ts'
import type { CanaryState } from './state.ts'

export interface Verdict {
  /** `pass`: promoted, or the step's last check passed; `fail`: rolled back, aborted, or the last check failed; else `inconclusive`. */
  verdict: 'pass' | 'fail' | 'inconclusive'
  /** Why, in words. */
  reason: string
  /** The canary's key: its service, or `lane:<lane>` for a lane canary. */
  service: string
  /** A lane canary's lane. */
  lane?: string
  candidate: string
  stable: string
  /** The controller's phase (`converging`, `waiting`, `analysing`, `paused`, `awaiting-confirmation`, `promoted`, `rolled-back`, `aborted`). */
  phase: string
  /** 1-based; 0 before the first step. */
  step: number
  steps: number
  /** The candidate's share now, %. */
  weight: number
  ruleVersion: number | null
  /** When this verdict was computed (ISO 8601). */
  at: string
}

/**
 * The verdict of a canary's state: its end when it has ended, else its last check (of any step:
 * evidence is not thrown away while the next step converges), else inconclusive. A hold by a
 * person, a hook or convergence is inconclusive whatever the last check said.
 */
export function verdictOf (s: CanaryState, now = Date.now()): Verdict {
  const base = { service: canaryKey(s.spec), ...(s.spec.lane === undefined ? {} : { lane: s.spec.lane }), candidate: s.spec.candidate, stable: s.spec.stable, phase: s.phase, step: s.step + 1, steps: s.spec.steps.length, weight: s.weight, ruleVersion: s.ruleVersion ?? null, at: new Date(now).toISOString() }
  if (s.phase === 'promoted' || s.phase === 'rolled-back' || s.phase === 'aborted') {
    const end = s.history.findLast((e) => e.event === ENDS[s.phase])
    return { ...base, verdict: s.phase === 'promoted' ? 'pass' : 'fail', reason: end?.message ?? s.phase }
  }
  if (s.phase === 'paused' && s.pausedBy !== 'analysis') return { ...base, verdict: 'inconclusive', reason: `held (paused by ${s.pausedBy ?? 'a person'}): ${s.history.at(-1)?.message ?? ''}` }
  const check = s.history.findLast((e) => e.event === 'check')
  const said = (check?.data as { verdict?: unknown } | undefined)?.verdict
  if (check !== undefined && (said === 'pass' || said === 'fail')) return { ...base, verdict: said, reason: `${check.message} (step ${check.step}, ${check.at})` }
  return { ...base, verdict: 'inconclusive', reason: `not judged yet: ${s.history.at(-1)?.message ?? s.phase}` }
}

const ENDS: Record<string, string> = { promoted: 'promote', 'rolled-back': 'rollback', aborted: 'abort' }
