// Retry budgets (GEP-3388, Linkerd, Finagle): retries of one service's lane are sent only while
// they stay under `percent` of the requests of the last `intervalMs`, or under a small floor of
// `minRetriesPerSecond` over the same interval when traffic is low. Counted in ten buckets of a
// tenth of the interval each, so the cost per request is a clock read and two increments.
// Transport-neutral: the HTTP service table and the gRPC balancer keep one per lane.

/** Retry budget policy (the `retryBudget` option), or false when off. */
export interface RetryBudgetPolicy {
  /** Retries allowed, as a percentage of the original requests of the interval. */
  percent: number
  /** The sliding interval requests and retries are counted over, in ms. */
  intervalMs: number
  /** Retries always allowed, per second of the interval, however few the requests. */
  minRetriesPerSecond: number
}

/** Defaults: 20 % (Envoy, Linkerd, GEP-3388) over 10 s (Linkerd's ttl), at least 3 per second (GEP-3388's example, Envoy's minimum of 3). */
export const DEFAULT_RETRY_BUDGET: Readonly<RetryBudgetPolicy> = Object.freeze({ percent: 20, intervalMs: 10_000, minRetriesPerSecond: 3 })

const BUCKETS = 10

/** One lane's budget. */
export class RetryBudget {
  readonly policy: RetryBudgetPolicy
  readonly #bucketMs: number
  readonly #ratio: number
  readonly #floor: number
  readonly #requests = new Float64Array(BUCKETS)
  readonly #retries = new Float64Array(BUCKETS)
  /** Index (time / bucketMs) of the newest bucket. */
  #epoch = -1
  #requestSum = 0
  #retrySum = 0
  /** Retries refused since creation. */
  refused = 0
  /** Retries allowed since creation. */
  allowed = 0

  constructor (policy: RetryBudgetPolicy) {
    this.policy = policy
    this.#bucketMs = policy.intervalMs / BUCKETS
    this.#ratio = policy.percent / 100
    this.#floor = (policy.minRetriesPerSecond * policy.intervalMs) / 1000
  }

  /** An original request (not a retry) was sent. */
  recordRequest (now: number = performance.now()): void {
    this.#advance(now)
    this.#requests[this.#epoch % BUCKETS]!++
    this.#requestSum++
  }

  /** Take one retry from the budget: false (and counted as refused) when it is spent. */
  tryRetry (now: number = performance.now()): boolean {
    this.#advance(now)
    if (this.#retrySum + 1 > Math.max(this.#ratio * this.#requestSum, this.#floor)) {
      this.refused++
      return false
    }
    this.#retries[this.#epoch % BUCKETS]!++
    this.#retrySum++
    this.allowed++
    return true
  }

  /** Requests and retries within the interval now. */
  window (now: number = performance.now()): { requests: number; retries: number } {
    this.#advance(now)
    return { requests: this.#requestSum, retries: this.#retrySum }
  }

  /** Moves to the bucket of `now`, emptying the buckets that left the interval. */
  #advance (now: number): void {
    const epoch = Math.floor(now / this.#bucketMs)
    if (epoch === this.#epoch) return
    if (this.#epoch < 0 || epoch - this.#epoch >= BUCKETS || epoch < this.#epoch) {
      // First use, a whole interval gone by, or the clock went back: start over.
      this.#requests.fill(0)
      this.#retries.fill(0)
      this.#requestSum = 0
      this.#retrySum = 0
    } else {
      for (let e = this.#epoch + 1; e <= epoch; e++) {
        const i = e % BUCKETS
        this.#requestSum -= this.#requests[i]!
        this.#retrySum -= this.#retries[i]!
        this.#requests[i] = 0
        this.#retries[i] = 0
      }
    }
    this.#epoch = epoch
  }
}

/** One service's budgets, one per lane, made on first use. */
export class RetryBudgets {
  readonly policy: RetryBudgetPolicy
  readonly #lanes = new Map<string, RetryBudget>()

  constructor (policy: RetryBudgetPolicy) {
    this.policy = policy
  }

  for (lane: string): RetryBudget {
    let b = this.#lanes.get(lane)
    if (b === undefined) this.#lanes.set(lane, (b = new RetryBudget(this.policy)))
    return b
  }

  /** The lanes' budgets made so far. */
  get lanes (): ReadonlyMap<string, RetryBudget> {
    return this.#lanes
  }

  /** Forget the budgets of lanes not in `keep` (lanes whose instances are all gone). */
  prune (keep: (lane: string) => boolean): void {
    for (const lane of this.#lanes.keys()) if (!keep(lane)) this.#lanes.delete(lane)
  }
}
