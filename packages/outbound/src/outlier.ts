// Passive outlier detection (Envoy's consecutive failures): an instance that fails N times in a
// row is ejected for baseEjectionMs × times ejected (capped), never more than a share of the
// service at once, and readmitted by one timer per service. Transport-neutral: the HTTP service
// table and the gRPC picker each own one over their members.

/** Outlier policy (the `outlier` option of the dispatcher). */
export interface OutlierPolicy {
  /** Consecutive failures that eject an instance. */
  consecutiveFailures: number
  /** Ejection time is baseEjectionMs × times ejected, capped by maxEjectionMs. */
  baseEjectionMs: number
  maxEjectionMs: number
  /** At most this share of the members is ejected at once (at least one when > 0). */
  maxEjectionPercent: number
  /** Count 5xx answers (HTTP) as failures too. */
  count5xx: boolean
}

/** The per-member state the detector keeps (fields on the member, so no map lookup per request). */
export interface OutlierState {
  consecutiveFailures: number
  timesEjected: number
  /** 0 when not ejected, else the time (ms, Date.now()) of readmission. */
  ejectedUntil: number
  lastEjectedAt: number
}

export function freshOutlierState (): OutlierState {
  return { consecutiveFailures: 0, timesEjected: 0, ejectedUntil: 0, lastEjectedAt: 0 }
}

export interface OutlierHost<M extends OutlierState> {
  /** The current members (a member no longer listed is never ejected). */
  members(): Iterable<M>
  has(member: M): boolean
  /** Membership of the pickable set changed: rebuild the lane index. */
  changed(): void
  /** Called after each ejection (`ejected`) and readmission, for logs and metrics. */
  onEjection(member: M, ejected: boolean, untilMs: number): void
}

export class OutlierDetector<M extends OutlierState> {
  readonly #policy: OutlierPolicy
  readonly #host: OutlierHost<M>
  #timer: NodeJS.Timeout | null = null
  #closed = false

  constructor (policy: OutlierPolicy, host: OutlierHost<M>) {
    this.#policy = policy
    this.#host = host
  }

  recordSuccess (member: M): void {
    member.consecutiveFailures = 0
  }

  /** A failure: eject after N in a row, unless too much of the service is out already. */
  recordFailure (member: M, now: number = Date.now()): void {
    if (this.#closed || member.ejectedUntil !== 0 || !this.#host.has(member)) return
    const policy = this.#policy
    if (++member.consecutiveFailures < policy.consecutiveFailures) return
    if (this.#ejectedCount() >= this.#maxEjected()) return
    // The multiplier starts over for an instance that has stayed in for a whole maxEjectionMs.
    if (member.lastEjectedAt !== 0 && now - member.lastEjectedAt > policy.maxEjectionMs + policy.baseEjectionMs * member.timesEjected) {
      member.timesEjected = 0
    }
    member.timesEjected++
    member.consecutiveFailures = 0
    member.lastEjectedAt = now
    member.ejectedUntil = now + Math.min(policy.baseEjectionMs * member.timesEjected, policy.maxEjectionMs)
    this.#host.changed()
    this.#schedule(now)
    this.#host.onEjection(member, true, member.ejectedUntil)
  }

  /** Stop the readmission timer; no ejection afterwards. */
  close (): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #ejectedCount (): number {
    let n = 0
    for (const m of this.#host.members()) if (m.ejectedUntil !== 0) n++
    return n
  }

  #maxEjected (): number {
    const pct = this.#policy.maxEjectionPercent
    if (pct === 0) return 0
    let size = 0
    for (const _ of this.#host.members()) size++
    return Math.max(1, Math.floor((size * pct) / 100))
  }

  /** One timer per service, for the earliest readmission. */
  #schedule (now: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    let next = Infinity
    for (const m of this.#host.members()) if (m.ejectedUntil !== 0 && m.ejectedUntil < next) next = m.ejectedUntil
    if (next === Infinity || this.#closed) return
    this.#timer = setTimeout(() => this.#readmit(), Math.max(0, next - now))
    this.#timer.unref()
  }

  #readmit (): void {
    this.#timer = null
    const now = Date.now()
    const back: M[] = []
    for (const m of this.#host.members()) {
      if (m.ejectedUntil !== 0 && m.ejectedUntil <= now) {
        m.ejectedUntil = 0
        m.consecutiveFailures = 0
        back.push(m)
      }
    }
    if (back.length > 0) this.#host.changed()
    this.#schedule(now)
    for (const m of back) this.#host.onEjection(m, false, 0)
  }
}
