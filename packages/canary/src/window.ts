// Cumulative figures of one lane's requests (from the server duration histogram) and the
// arithmetic on them: the window between two readings, and a quantile from buckets.

/** Cumulative counts of one instance (or a lane's sum), as scraped. */
export interface Figures {
  requests: number
  /** Answers with a 5xx status. */
  serverErrors: number
  /** Requests whose connection closed before an answer (network errors, apart from 5xx). */
  networkErrors: number
  /** Sum of durations, seconds. */
  seconds: number
  /** Cumulative bucket counts by upper bound (seconds), ascending; the last is +Inf. */
  buckets: Array<[number, number]>
}

export function emptyFigures (): Figures {
  return { requests: 0, serverErrors: 0, networkErrors: 0, seconds: 0, buckets: [] }
}

/**
 * `now − before` of one instance's cumulative figures. A counter that went down (a restart) gives
 * `now` (the new life's counts): right for a live series of points; a step's window does more
 * (WindowTracker: it sees and judges the restart).
 */
export function delta (now: Figures, before: Figures | undefined): Figures {
  if (before === undefined || wentDown(now, before)) return now
  const prev = new Map(before.buckets)
  return {
    requests: now.requests - before.requests,
    serverErrors: Math.max(0, now.serverErrors - before.serverErrors),
    networkErrors: Math.max(0, now.networkErrors - before.networkErrors),
    seconds: Math.max(0, now.seconds - before.seconds),
    buckets: now.buckets.map(([le, n]) => [le, Math.max(0, n - (prev.get(le) ?? 0))])
  }
}

/** Whether any counter of `now` is below its value in `before`: the process restarted (or the series was reset). */
export function wentDown (now: Figures, before: Figures): boolean {
  if (now.requests < before.requests || now.serverErrors < before.serverErrors || now.networkErrors < before.networkErrors || now.seconds < before.seconds) return true
  const prev = new Map(before.buckets)
  return now.buckets.some(([le, n]) => n < (prev.get(le) ?? 0))
}

/**
 * What is wrong with one instance's figures as a source gave them: a count or sum that is not a
 * finite number ≥ 0 (`NaN`, `±Inf`, negative), or a bucket bound that is not a number.
 * Undefined when they are sound. Such figures are never judged: the reading is invalid.
 */
export function figuresProblem (f: Figures): string | undefined {
  for (const k of ['requests', 'serverErrors', 'networkErrors', 'seconds'] as const) {
    if (!countable(f[k])) return `${k} ${f[k]}`
  }
  for (const [le, n] of f.buckets) {
    if (Number.isNaN(le) || le < 0) return `bucket le=${le}`
    if (!countable(n)) return `bucket le=${le} ${n}`
  }
  return undefined
}

/** A finite number ≥ 0. */
export function countable (x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0
}

/** Add `b` into `a` (same bucket bounds, or a's are taken from b when a has none). */
export function addInto (a: Figures, b: Figures): void {
  a.requests += b.requests
  a.serverErrors += b.serverErrors
  a.networkErrors += b.networkErrors
  a.seconds += b.seconds
  const idx = new Map(a.buckets.map(([le], i) => [le, i]))
  for (const [le, n] of b.buckets) {
    const i = idx.get(le)
    if (i === undefined) {
      a.buckets.push([le, n])
      idx.set(le, a.buckets.length - 1)
    } else a.buckets[i]![1] += n
  }
  a.buckets.sort((x, y) => x[0] - y[0])
}

/**
 * The q-quantile from cumulative buckets, interpolated linearly inside the bucket that holds
 * it (what Prometheus's histogram_quantile does). Undefined without requests. A quantile in the
 * +Inf bucket is reported as the largest finite bound: "at least" that much.
 */
export function quantile (q: number, buckets: ReadonlyArray<readonly [number, number]>): number | undefined {
  const total = buckets.at(-1)?.[1] ?? 0
  if (total === 0) return undefined
  const rank = q * total
  let prevLe = 0
  let prevN = 0
  for (const [le, n] of buckets) {
    if (n >= rank) {
      if (le === Infinity) return prevLe
      const inBucket = n - prevN
      return inBucket === 0 ? le : prevLe + (le - prevLe) * ((rank - prevN) / inBucket)
    }
    prevLe = le
    prevN = n
  }
  return prevLe
}

/** What a window of one lane says. */
export interface LaneWindow {
  requests: number
  /** (5xx + network errors) / requests; 0 without requests. */
  errorRate: number
  /** 5xx / requests. */
  serverErrorRate: number
  networkErrors: number
  /** Seconds; undefined without requests. */
  p99: number | undefined
  /** Mean duration, seconds. */
  mean: number | undefined
  /**
   * Restarts of the lane's instances in the window: a counter that went down, a new process start
   * time, an instance that left discovery (counted while it is away; once back, as a restart unless
   * its start time is unchanged). Undefined: not known (0).
   */
  restarts?: number
  /** Why the lane's figures do not cover the whole window (an instance restarted, could not be read, ...); empty or undefined when they do. */
  partial?: string[]
  /** Calls to the lane its callers saw fail (no answer: the connection died, a timeout), in the window. */
  callerFailures?: number
}

/** The window's shares of `f`; `extra` adds what a WindowTracker knows besides the counts. */
export function summarize (f: Figures, extra: Pick<LaneWindow, 'restarts' | 'partial' | 'callerFailures'> = {}): LaneWindow {
  const n = f.requests
  return {
    requests: n,
    errorRate: n === 0 ? 0 : (f.serverErrors + f.networkErrors) / n,
    serverErrorRate: n === 0 ? 0 : f.serverErrors / n,
    networkErrors: f.networkErrors,
    p99: quantile(0.99, f.buckets),
    mean: n === 0 ? undefined : f.seconds / n,
    ...extra
  }
}
