// A consumer's figures: @flowtag/mq's messaging.process.duration histogram read like the HTTP
// server's (processed = requests, failed = server errors), and two histograms of one instance
// merged into cumulative buckets even when their bounds differ.
import t from 'tap'
import { figuresFromText, summarize } from '../src/internals.ts'
import { combineFigures } from '../src/messages.ts'
import { messageText, promText } from './fixtures/instances.ts'

t.test('a consumer is judged on failed / processed messages', async (t) => {
  const f = figuresFromText(messageText({ ok: 80, failed: 20, seconds: 0.02 }))
  t.match(f, { requests: 100, serverErrors: 20, networkErrors: 0 })
  const w = summarize(f)
  t.equal(w.errorRate, 0.2)
  t.equal(w.serverErrorRate, 0.2)
  t.ok(w.p99 !== undefined && w.p99 <= 0.025, 'latency from its buckets')
})

t.test('an instance with HTTP requests and messages counts both, its buckets still cumulative', async (t) => {
  const f = figuresFromText(promText({ ok: 10, failed: 0, seconds: 0.02 }) + messageText({ ok: 5, failed: 5, seconds: 2 }))
  t.match(f, { requests: 20, serverErrors: 5 })
  const counts = f.buckets.map(([, n]) => n)
  t.ok(counts.every((n, i) => i === 0 || n >= counts[i - 1]!), 'cumulative')
  t.equal(f.buckets.at(-1)?.[1], 20)
  const merged = combineFigures(
    { requests: 2, serverErrors: 0, networkErrors: 0, seconds: 0.2, buckets: [[0.1, 2], [Infinity, 2]] },
    { requests: 3, serverErrors: 1, networkErrors: 0, seconds: 3, buckets: [[0.05, 0], [0.5, 1], [Infinity, 3]] }
  )
  t.same(merged.buckets, [[0.05, 0], [0.1, 2], [0.5, 3], [Infinity, 5]], 'each histogram counted at its own bound below')
  t.same(combineFigures(merged, { requests: 0, serverErrors: 0, networkErrors: 0, seconds: 0, buckets: [] }), merged, 'an empty one changes nothing')
})
