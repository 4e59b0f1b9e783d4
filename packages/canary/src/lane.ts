// A lane canary: which services have instances in the candidate lane (found in Nacos), and one
// verdict for the lane from each service's own (its candidate against its stable, same window).
// One failing service fails the lane: the controller rolls the whole lane back in one RuleSet.
import type { Instance } from '@flowtag/nacos'
import type { RuleSet } from '@flowtag/rules'
import type { Breach, Judgement } from './judge.ts'
import type { CanarySpec } from './spec.ts'

/** Instance metadata of a @flowtag/mq message consumer's registration (`flowtag.role: consumer`). */
export const ROLE_METADATA = 'flowtag.role'
/** Instance metadata holding the moment the instance started listening, epoch ms (@flowtag/nacos's registration). */
export const STARTED_AT_METADATA = 'flowtag.startedAt'

/** One service of the lane. */
export interface LaneMember {
  service: string
  /** `consumer` when every candidate instance registered as a @flowtag/mq consumer (judged on failed / processed messages), else `http` (HTTP and gRPC). */
  kind: 'http' | 'consumer'
  /** The candidate instances (`ip:port`). */
  instances: string[]
}

/** A service's verdict in a lane check. */
export interface ServiceJudgement {
  service: string
  judgement: Judgement
  /** Candidate instances still warming (`ip:port (12 s of 60 s)`); empty when none. */
  warming: string[]
  /** Services seen calling this service's candidate lane (@flowtag/outbound's metrics), when read. */
  callers?: readonly string[]
}

/**
 * Services a lane canary looks at: those the RuleSet's `services` declares, the spec's `services`
 * and its `convergence` services. Nacos has no query by instance metadata, so a lane's members are
 * the ones among these with an instance in the lane.
 */
export function laneCatalog (rs: RuleSet | undefined, spec: Pick<CanarySpec, 'services' | 'convergence' | 'exclude'>): string[] {
  const excluded = new Set(spec.exclude)
  return [...new Set([...Object.keys(rs?.services ?? {}), ...spec.services, ...(spec.convergence ?? [])])].filter((s) => !excluded.has(s)).sort()
}

/** The members of lane `candidate` among `listed` (service → its instances from discovery), by name. */
export function laneMembers (listed: ReadonlyMap<string, readonly Instance[]>, candidate: string, laneKey = 'version'): LaneMember[] {
  const members: LaneMember[] = []
  for (const [service, instances] of listed) {
    const inLane = instances.filter((i) => i.metadata[laneKey] === candidate)
    if (inLane.length === 0) continue
    const consumer = inLane.every((i) => i.metadata[ROLE_METADATA] === 'consumer')
    members.push({ service, kind: consumer ? 'consumer' : 'http', instances: inLane.map((i) => `${i.ip}:${i.port}`) })
  }
  return members.sort((a, b) => a.service.localeCompare(b.service))
}

/**
 * Candidate instances that are still in their warm-up window at `now`: started (their published
 * `flowtag.startedAt`, epoch ms) less than `windowMs` ago. An instance that publishes no valid
 * start time is not known to be warming.
 */
export function warmingInstances (instances: readonly Instance[], candidate: string, now: number, windowMs: number, laneKey = 'version'): string[] {
  if (windowMs <= 0) return []
  const warming: string[] = []
  for (const i of instances) {
    if (i.metadata[laneKey] !== candidate) continue
    const raw = i.metadata[STARTED_AT_METADATA]
    const started = raw === undefined || raw.trim() === '' ? NaN : Number(raw)
    if (!Number.isFinite(started)) continue
    const age = Math.max(0, now - Math.min(started, now))
    if (age < windowMs) warming.push(`${i.ip}:${i.port} (${Math.round(age / 1000)} s of ${Math.round(windowMs / 1000)} s)`)
  }
  return warming
}

const LATENCY_CHECKS: ReadonlySet<string> = new Set(['p99', 'relative.p99', 'sequential.latency'])

/**
 * A service's judgement, knowing which candidate instances are warming: a failure on latency
 * alone while one is warming waits (cold code is slow; it is judged once warm). A failure with
 * any other breach (errors, restarts) stands.
 */
export function withWarmup (j: Judgement, warming: readonly string[], service?: string): Judgement {
  if (warming.length === 0 || j.verdict !== 'fail' || j.breaches.length === 0) return j
  if (!j.breaches.every((b) => LATENCY_CHECKS.has(b.check))) return j
  return { ...j, verdict: 'waiting', breaches: [], reason: `warming: ${service === undefined ? '' : `${service} `}${warming.join(', ')}; latency not judged until warm (${j.reason})` }
}

/**
 * The failing services, the cause first: a failure passed up a call chain (order-service answering
 * 500 because user-service did) fails its callers too, so a failing service that calls no other
 * failing one comes before those that do (then by name).
 */
export function causeFirst (failing: readonly ServiceJudgement[]): ServiceJudgement[] {
  const calls = (from: ServiceJudgement) => failing.some((to) => to !== from && (to.callers ?? []).includes(from.service))
  return [...failing].sort((a, b) => Number(calls(a)) - Number(calls(b)) || a.service.localeCompare(b.service))
}

/**
 * The lane's verdict from its services': `fail` when any fails (the cause first, see `causeFirst`:
 * it is `failing`, named in the reason), else `waiting` when any waits, else `pass`. Breaches
 * carry the service's name. With one service, its judgement (and `failing`, its name, when it fails).
 */
export function laneJudgement (services: readonly ServiceJudgement[]): Judgement & { failing?: string } {
  if (services.length === 1) {
    const only = services[0]!
    return only.judgement.verdict === 'fail' ? { ...only.judgement, failing: only.service } : only.judgement
  }
  const failing = causeFirst(services.filter((s) => s.judgement.verdict === 'fail'))
  const waiting = services.filter((s) => s.judgement.verdict === 'waiting')
  const decider = failing[0] ?? waiting[0] ?? services[0]
  if (decider === undefined) throw new Error('a lane judgement needs a service')
  const breaches: Breach[] = failing.flatMap((s) => s.judgement.breaches.map((b) => ({ ...b, service: s.service })))
  const errorRateHigh = services.some((s) => s.judgement.errorRateHigh)
  const base = { candidate: decider.judgement.candidate, stable: decider.judgement.stable, breaches, errorRateHigh }
  if (failing.length > 0) {
    const calling = (s: ServiceJudgement) => failing.filter((to) => to !== s && (to.callers ?? []).includes(s.service)).map((to) => to.service)
    const reason = failing.map((s) => `${s.service} failed${calling(s).length === 0 ? '' : ` (it calls ${calling(s).join(', ')})`}: ${s.judgement.reason}`).join('; ')
    return { ...base, verdict: 'fail', failing: failing[0]!.service, reason }
  }
  if (waiting.length > 0) {
    // A warming service's reason comes first and names it: `waiting: warming: user-service ...`.
    const warm = (s: ServiceJudgement) => s.judgement.reason.startsWith('warming:')
    const reasons = [...waiting.filter(warm).map((s) => s.judgement.reason), ...waiting.filter((s) => !warm(s)).map((s) => `${s.service}: ${s.judgement.reason}`)]
    return { ...base, verdict: 'waiting', reason: reasons.join('; ') }
  }
  return { ...base, verdict: 'pass', reason: services.map((s) => `${s.service}: ${s.judgement.reason}`).join('; ') }
}
