// Shadow divergence (@flowtag/shadow): the share of shadow pairs (a user's answer and the mirror
// lane's answer to the same request) that differ beyond noise. The process that made the copy
// counts them, per compared service, route and mirror lane, as `flowtag_shadow_compared_total`
// and `flowtag_shadow_diverged_total`; the controller reads them from the same /metrics as the
// lanes' figures (the service's own instances and its callers', which is where an edge's copies
// are compared), sums them per mirror lane, and gates a step on `maxDivergence`.
import type { Sample } from './prom-text.ts'
import { pct, type Breach, type Judgement } from './judge.ts'

/** Prefix of the shadow counters in Prometheus text. */
export const SHADOW_SERIES = 'flowtag_shadow_'
const SHADOW = /^flowtag_shadow_(compared|diverged)(?:_total)?$/

/** Cumulative counts of the pairs one process compared for a service, in one mirror lane. */
export interface ShadowFigures {
  /** Pairs judged (their route had learned its noise). */
  compared: number
  /** Judged pairs that differ beyond noise. */
  diverged: number
}

/** What one process (an instance of the service or of a caller) counted of the service's shadow pairs. */
export interface ShadowReading {
  key: string
  /** By mirror lane; undefined when the process could not be read. */
  lanes: Map<string, ShadowFigures> | undefined
  startTime?: number
}

/** The service's shadow counts in one process's samples, by mirror lane (the `lane` label). */
export function shadowFromSamples (samples: readonly Sample[], service: string): Map<string, ShadowFigures> {
  const lanes = new Map<string, ShadowFigures>()
  for (const s of samples) {
    const m = SHADOW.exec(s.name)
    if (m === null || s.labels.service !== service) continue
    const lane = s.labels.lane ?? 'none'
    let f = lanes.get(lane)
    if (f === undefined) lanes.set(lane, (f = { compared: 0, diverged: 0 }))
    if (m[1] === 'compared') f.compared += s.value
    else f.diverged += s.value
  }
  return lanes
}

/** The step's divergence gate, as the spec gives it (`maxDivergence`). */
export interface DivergenceGate {
  /** Largest share (0..1) of compared pairs that may diverge. */
  max: number
  /** Pairs compared in the step's window before the gate decides; fewer: the check waits. */
  minCompared: number
  action: 'pause' | 'rollback'
}

/**
 * The check with the divergence gate applied: fewer than `minCompared` pairs in the window make a
 * passing (or waiting) check wait; a share above `max` fails it with a `divergence` breach. A
 * failing check stays failing, with the breach added. `required: false` (a service of a lane
 * canary that no process compares) leaves a check without pairs as it is.
 */
export function withDivergence (j: Judgement, gate: DivergenceGate | undefined, shadow: ShadowFigures, required = true): Judgement {
  if (gate === undefined) return j
  if (shadow.compared < gate.minCompared) {
    if (!required && shadow.compared === 0) return j
    if (j.verdict === 'fail') return j
    return { ...j, verdict: 'waiting', reason: `${shadow.compared} of ${gate.minCompared} shadow pairs compared in the window${j.verdict === 'waiting' ? `; ${j.reason}` : ''}` }
  }
  const share = shadow.diverged / shadow.compared
  const figures = `shadow ${pct(share)} of ${shadow.compared} pairs diverge`
  if (!(share > gate.max)) return { ...j, reason: `${j.reason}; ${figures}` }
  const breach: Breach = { check: 'divergence', value: share, threshold: gate.max, action: gate.action }
  return { ...j, verdict: 'fail', breaches: [...j.breaches, breach], reason: `divergence ${pct(share)} > ${gate.max} (${figures}); ${j.reason}` }
}
