// A message consumer's figures (@flowtag/mq): its `messaging.process.duration` histogram, one
// observation per handled or failed message, read like the HTTP server histogram: processed
// messages are its "requests", failed ones (an `error.type` label) its "server errors". A consumer
// service is judged on failed / processed messages as an HTTP one is on 5xx / requests.
import type { Sample } from './prom-text.ts'
import { emptyFigures, type Figures } from './window.ts'

/** Prefix of the consumer histogram's series in Prometheus text (OTel's exporter adds `_seconds`). */
export const MESSAGE_SERIES = 'messaging_process_duration'
const MESSAGE_HISTOGRAM = /^messaging_process_duration(?:_seconds)?_(bucket|count|sum)$/

/** Sum the consumer histogram's series of one instance into figures (all zero when it has none). */
export function messageFiguresFromSamples (samples: readonly Sample[]): Figures {
  return histogramFigures(samples, MESSAGE_HISTOGRAM, (labels) => labels.error_type !== undefined && labels.error_type !== '')
}

/**
 * Sum the series of one histogram (`pattern` matches its `_bucket`, `_count` and `_sum` names,
 * the suffix as group 1) into figures: each `_count` adds requests, and server errors where
 * `isError(labels)`; the buckets add up per bound.
 */
export function histogramFigures (samples: readonly Sample[], pattern: RegExp, isError: (labels: Sample['labels']) => boolean): Figures {
  const f = emptyFigures()
  const buckets = new Map<number, number>()
  for (const s of samples) {
    const m = pattern.exec(s.name)
    if (m === null) continue
    if (m[1] === 'bucket') {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le)
      buckets.set(le, (buckets.get(le) ?? 0) + s.value)
    } else if (m[1] === 'sum') f.seconds += s.value
    else {
      f.requests += s.value
      if (isError(s.labels)) f.serverErrors += s.value
    }
  }
  f.buckets = [...buckets].sort((a, b) => a[0] - b[0])
  return f
}

/**
 * One instance's figures from two histograms (HTTP requests and messages): counts add up; the
 * cumulative buckets are merged over the union of their bounds (each histogram counts, at a bound,
 * what it had at its own largest bound not above it), so the result stays cumulative even when
 * their bounds differ. Either one alone is returned as it is.
 */
export function combineFigures (a: Figures, b: Figures): Figures {
  if (b.requests === 0 && b.buckets.length === 0) return a
  if (a.requests === 0 && a.buckets.length === 0) return b
  const bounds = [...new Set([...a.buckets.map(([le]) => le), ...b.buckets.map(([le]) => le)])].sort((x, y) => x - y)
  const at = (buckets: Figures['buckets'], le: number) => {
    let n = 0
    for (const [bound, count] of buckets) if (bound <= le) n = count
    return n
  }
  return {
    requests: a.requests + b.requests,
    serverErrors: a.serverErrors + b.serverErrors,
    networkErrors: a.networkErrors + b.networkErrors,
    seconds: a.seconds + b.seconds,
    buckets: bounds.map((le) => [le, at(a.buckets, le) + at(b.buckets, le)])
  }
}
