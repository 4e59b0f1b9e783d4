// A figure that is not a finite number ≥ 0, from any source, is never judged. A Prometheus that
// answers NaN for the candidate's request count (its 5xx count a number, 40% of its requests) once
// gave "check passed: candidate NaN req, errors NaN%" and a promotion: every comparison with NaN is
// false, so no threshold was crossed. Now the reading is invalid: the step waits, says why, and
// ends at its deadline. The same for scraped instances that export a negative count.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { CanaryController, judge, parseCanarySpec, readingProblem, type Reading } from '../src/index.ts'
import { candidateWeight, readRules, summarize, TERMINAL } from '../src/internals.ts'
import { RULES, world } from './fixtures/world.ts'

const fast = { service: 'order-service', candidate: 'v2', stable: 'v1', steps: [50, 100], intervalMs: 400, minRequests: 20, maxWaitMs: 1500, convergenceTimeoutMs: 5000, deadlineMs: 60_000 }

/**
 * A Prometheus HTTP API answering each instant query from counters that grow with every
 * reading: v1 serves 100 a reading, v2 100 of which 40 fail, and v2's 200s are `v2ok` (NaN).
 */
async function fakePrometheus (t: { teardown (fn: () => unknown): void }, v2ok: (reads: number) => string) {
  let reads = 0
  const queries: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d })
    req.on('end', () => {
      const q = new URLSearchParams(body).get('query') ?? ''
      queries.push(q)
      if (q.includes('_count"')) reads++
      const n = reads * 100
      const row = (metric: Record<string, string>, value: string | number) => ({ metric, value: [Date.now() / 1000, String(value)] })
      const v1 = { instance: '10.0.0.1:8080', flowtag_version: 'v1' }
      const v2 = { instance: '10.0.0.2:8080', flowtag_version: 'v2' }
      let result: unknown[] = []
      if (q.includes('_count"')) {
        result = [row({ ...v1, http_response_status_code: '200' }, n), row({ ...v2, http_response_status_code: '200' }, v2ok(reads)), row({ ...v2, http_response_status_code: '500', error_type: '500' }, reads * 40)]
      } else if (q.includes('_sum"')) result = [row(v1, n * 0.02), row(v2, reads * 100 * 0.02)]
      else if (q.includes('_bucket"')) result = [row({ ...v1, le: '0.05' }, n), row({ ...v1, le: '+Inf' }, n), row({ ...v2, le: '0.05' }, reads * 100), row({ ...v2, le: '+Inf' }, reads * 100)]
      else if (q.includes('flowtag_process_start_time')) result = [row(v1, 1_700_000_000), row(v2, 1_700_000_000)]
      else if (q.includes('"up"')) result = [row({ instance: v1.instance }, 1), row({ instance: v2.instance }, 1)]
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, queries, reads: () => reads }
}

t.test('Prometheus answers NaN for the candidate\'s request count: the step waits, says why, never passes', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  let nan = false
  const prom = await fakePrometheus(t, (reads) => (nan ? 'NaN' : String(reads * 60)))
  const c = await CanaryController.start({ ...fast, prometheus: { url: prom.url } }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  // From the moment the step's window opens, the candidate's count is NaN.
  c.onUpdate((s) => { if (s.history.at(-1)?.event === 'converged') nan = true })
  const end = await c.done
  const story = end.history.map((e) => `${e.event}: ${e.message}`).join('\n')
  t.equal(end.phase, 'rolled-back', story)
  t.notOk(end.history.some((e) => e.event === 'check'), 'never judged: no pass, no fail on NaN')
  const wait = end.history.find((e) => e.event === 'wait')
  t.match(wait?.message, /waiting: no metrics: invalid figures from the metrics source: instance 10\.0\.0\.2:8080 \(v2\): requests NaN/, 'says why')
  t.match(end.history.find((e) => e.event === 'deadline')?.message, /step 1 waited \d+ ms/, 'ends at the step\'s deadline, as the spec says')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0)
})

t.test('NaN from the first reading: the step\'s window never opens; paused at the convergence timeout, saying why', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  await fakePrometheus(t, () => 'NaN').then(async (prom) => {
    const c = await CanaryController.start({ ...fast, convergenceTimeoutMs: 1000, prometheus: { url: prom.url } }, { nacos, tickMs: 100 })
    t.teardown(() => c.close())
    await waitFor('paused', () => c.state.phase === 'paused' || TERMINAL.has(c.state.phase), 15_000)
    t.equal(c.state.pausedBy, 'convergence')
    t.match(c.state.history.at(-1)?.message, /no metrics to start the step's window from \(invalid figures from the metrics source: instance 10\.0\.0\.2:8080 \(v2\): requests NaN\)/)
    t.notOk(c.state.history.some((e) => e.event === 'check' || e.event === 'converged'), 'nothing judged')
    await c.command('abort', 'test')
    t.equal((await c.done).phase, 'aborted')
  })
})

t.test('the same Prometheus with a number there: the candidate\'s 40% 5xx fail the checks (the fake is sound)', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const prom = await fakePrometheus(t, (reads) => String(reads * 60))
  const c = await CanaryController.start({ ...fast, prometheus: { url: prom.url } }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  const checks = end.history.filter((e) => e.event === 'check')
  t.ok(checks.length > 0 && checks.every((e) => (e.data as { verdict: string }).verdict === 'fail'), 'every check failed')
  t.match(checks[0]?.data, { candidate: { serverErrorRate: 0.4 } })
  t.ok((checks[0]?.data as { breaches: Array<{ check: string }> }).breaches.some((b) => b.check === 'serverErrorRate'), '5xx above the absolute threshold')
})

t.test('scraped instances exporting a negative count: invalid, waiting, rolled back at the deadline', async (t) => {
  const { nacos, v2 } = await world(t)
  const c = await CanaryController.start(fast, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  c.onUpdate((s) => { if (s.history.at(-1)?.event === 'converged') v2.counts.ok = -1e9 })
  const end = await c.done
  t.equal(end.phase, 'rolled-back')
  t.notOk(end.history.some((e) => e.event === 'check'))
  t.match(end.history.find((e) => e.event === 'wait')?.message, /invalid figures from the metrics source: instance 127\.0\.0\.1:\d+ \(v2\): requests -\d+/)
})

t.test('readingProblem and the judge: NaN, ±Inf and negatives anywhere are invalid', async (t) => {
  const ok = { requests: 10, serverErrors: 1, networkErrors: 0, seconds: 0.2, buckets: [[0.05, 10], [Infinity, 10]] as Array<[number, number]> }
  const reading = (patch: object, extra: Partial<Reading> = {}): Reading => ({
    at: 1,
    instances: new Map([['a', { key: 'a', lane: 'v2', metadata: {}, figures: { ...ok, ...patch } }]]),
    ...extra
  })
  t.equal(readingProblem(reading({})), undefined, 'sound figures')
  t.equal(readingProblem(reading({ requests: NaN })), 'instance a (v2): requests NaN')
  t.equal(readingProblem(reading({ seconds: Infinity })), 'instance a (v2): seconds Infinity')
  t.equal(readingProblem(reading({ serverErrors: -1 })), 'instance a (v2): serverErrors -1')
  t.equal(readingProblem(reading({ buckets: [[0.05, NaN]] })), 'instance a (v2): bucket le=0.05 NaN')
  t.equal(readingProblem(reading({ buckets: [[NaN, 1]] })), 'instance a (v2): bucket le=NaN')
  t.equal(readingProblem({ at: 1, instances: new Map([['a', { key: 'a', lane: 'v2', metadata: {}, figures: ok, startTime: -1 }]]) }), 'instance a (v2): start time -1')
  t.equal(readingProblem({ at: NaN, instances: new Map() }), 'reading time NaN')
  const caller = (calls: Map<string, { requests: number, failures: number }>, startTime?: number) => reading({}, { callers: new Map([['edge@1', { key: 'edge@1', service: 'edge', calls, ...(startTime === undefined ? {} : { startTime }) }]]) })
  t.equal(readingProblem(caller(new Map([['v2', { requests: NaN, failures: 0 }]]))), 'caller edge@1: calls to v2 NaN')
  t.equal(readingProblem(caller(new Map([['v2', { requests: 1, failures: -2 }]]))), 'caller edge@1: failed calls to v2 -2')
  t.equal(readingProblem(caller(new Map(), Infinity)), 'caller edge@1: start time Infinity')
  t.equal(readingProblem(caller(new Map([['v2', { requests: 3, failures: 1 }]]), 1_700_000_000)), undefined)

  const spec = parseCanarySpec({ service: 's', candidate: 'v2', stable: 'v1', minRequests: 10 })
  const nan = summarize({ requests: NaN, serverErrors: 40, networkErrors: 0, seconds: 1, buckets: [] })
  const j = judge(spec, nan, summarize(ok))
  t.equal(j.verdict, 'waiting', 'the judge never passes NaN, whoever calls it')
  t.match(j.reason, /invalid figures \(candidate requests NaN\)/)
  t.match(judge(spec, summarize(ok), { ...summarize(ok), p99: -1 }).reason, /invalid figures \(stable p99 -1\)/)
  t.match(judge(spec, { ...summarize(ok), restarts: Infinity }, summarize(ok)).reason, /invalid figures \(candidate restarts Infinity\)/)
})
