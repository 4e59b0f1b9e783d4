// The retry budget without the network: a ratio of recent requests with a floor, over a sliding
// interval, on a simulated clock; and the per-service policies (options).
import t from 'tap'
import { DEFAULT_RETRY_BUDGET, RetryBudget, RetryBudgets, policiesFor, DEFAULT_WARMUP } from '../src/lanes-entry.ts'

t.test('retries stay under the ratio of recent requests, or the floor', async (t) => {
  const b = new RetryBudget({ percent: 20, intervalMs: 10_000, minRetriesPerSecond: 0 })
  let now = 1_000_000
  t.equal(b.tryRetry(now), false, 'no request yet, no floor: no retry')
  t.equal(b.refused, 1)
  for (let i = 0; i < 10; i++) b.recordRequest(now)
  t.equal(b.tryRetry(now), true, '1 of 10 requests')
  t.equal(b.tryRetry(now), true, '2 of 10 requests: 20 %')
  t.equal(b.tryRetry(now), false, 'a third would be 30 %')
  t.same(b.window(now), { requests: 10, retries: 2 })
  t.equal(b.allowed, 2)
  t.equal(b.refused, 2)
  // The interval slides: requests and retries older than intervalMs no longer count.
  now += 5000
  for (let i = 0; i < 10; i++) b.recordRequest(now)
  t.equal(b.tryRetry(now), true)
  t.equal(b.tryRetry(now), true)
  t.same(b.window(now), { requests: 20, retries: 4 })
  now += 5000
  t.same(b.window(now), { requests: 10, retries: 2 }, 'the first half has left the interval')
  now += 20_000
  t.same(b.window(now), { requests: 0, retries: 0 }, 'a whole interval later: empty')
  t.same(b.window(now - 60_000), { requests: 0, retries: 0 }, 'a clock that went back starts over')
})

t.test('the floor allows a few retries however few the requests', async (t) => {
  const b = new RetryBudget({ percent: 20, intervalMs: 10_000, minRetriesPerSecond: 0.5 })
  const now = 1_000_000
  b.recordRequest(now)
  let allowed = 0
  for (let i = 0; i < 10; i++) if (b.tryRetry(now)) allowed++
  t.equal(allowed, 5, '0.5 per second over 10 s: 5 retries, though 20 % of 1 request is 0.2')
})

t.test('steady traffic with half the requests failing: retries stay near the ratio', async (t) => {
  // 200 requests per second for a minute, each failing one asking for a retry.
  const b = new RetryBudget(DEFAULT_RETRY_BUDGET)
  let requests = 0
  let retries = 0
  for (let ms = 0; ms < 60_000; ms += 5) {
    b.recordRequest(ms)
    requests++
    if (requests % 2 === 0 && b.tryRetry(ms)) retries++
  }
  const floor = (DEFAULT_RETRY_BUDGET.minRetriesPerSecond * DEFAULT_RETRY_BUDGET.intervalMs) / 1000
  t.ok(retries / requests <= 0.2 + floor / requests, `${retries} retries for ${requests} requests`)
  t.ok(retries / requests > 0.15, 'the budget is used, not starved')
  t.equal(b.refused, requests / 2 - retries, 'every retry not sent is counted')
})

t.test('budgets per lane; lanes whose instances are gone are forgotten', async (t) => {
  const budgets = new RetryBudgets(DEFAULT_RETRY_BUDGET)
  const v1 = budgets.for('v1')
  t.equal(budgets.for('v1'), v1, 'one per lane')
  t.not(budgets.for('v2'), v1)
  budgets.prune((lane) => lane === 'v1')
  t.same([...budgets.lanes.keys()], ['v1'])
  t.same(DEFAULT_RETRY_BUDGET, { percent: 20, intervalMs: 10_000, minRetriesPerSecond: 3 })
})

t.test("a service's own settings over the dispatcher-wide ones", async (t) => {
  const wide = { warmup: DEFAULT_WARMUP, retryBudget: DEFAULT_RETRY_BUDGET }
  const services = {
    slow: { warmup: { windowMs: 600_000 } },
    off: { warmup: false as const, retryBudget: false as const },
    tight: { retryBudget: { percent: 5 } }
  }
  t.same(policiesFor('other', { ...wide, services }), wide, 'a service not listed: the dispatcher-wide policies')
  t.same(policiesFor('slow', { ...wide, services }).warmup, { ...DEFAULT_WARMUP, windowMs: 600_000 }, 'fields given replace, the rest inherit')
  t.same(policiesFor('off', { ...wide, services }), { warmup: false, retryBudget: false })
  t.same(policiesFor('tight', { ...wide, services }).retryBudget, { ...DEFAULT_RETRY_BUDGET, percent: 5 })
  t.same(policiesFor('slow', { warmup: false, retryBudget: false, services }).warmup, { ...DEFAULT_WARMUP, windowMs: 600_000 }, 'on for one service while off for the rest: from the defaults')
  t.same(policiesFor('toString', { ...wide, services }), wide, 'only own keys')
})
