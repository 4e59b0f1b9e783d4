// The retry budget against real servers on loopback: with one instance failing every request
// (its connection closed before any answer, never ejected), the requests sent upstream per
// request received stay ≤ 1 + the budget's ratio, and the retries refused are counted.
import t, { type Test } from 'tap'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer, type Socket } from 'node:net'
import type { Meter } from '@opentelemetry/api'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { listenOnLoopback } from '@flowtag/test-kit'
import { FlowTagDispatcher, type OutboundOptions } from '../src/index.ts'
import { load } from './fixtures/instances.ts'

interface Upstream { port: number; requests: number }

/** Answers every request: 200. */
async function healthy (t: Test): Promise<Upstream> {
  const up: Upstream = { port: 0, requests: 0 }
  const server = createHttpServer((_req, res) => {
    up.requests++
    res.end('ok')
  })
  up.port = await listenOnLoopback(server)
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return up
}

/** Reads each request's first bytes, then closes the connection without an answer. */
async function failing (t: Test): Promise<Upstream> {
  const up: Upstream = { port: 0, requests: 0 }
  const sockets = new Set<Socket>()
  const server = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.once('data', () => {
      up.requests++
      socket.destroy()
    })
    socket.on('error', () => {})
  })
  up.port = await listenOnLoopback(server as never)
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return up
}

type Measure = { name: string; value: number; attrs: Record<string, unknown> }

function recordingMeter (out: Measure[]): Meter {
  const instrument = (name: string) => ({
    add: (value: number, attrs: Record<string, unknown> = {}) => out.push({ name, value, attrs }),
    record: () => {}
  })
  return { createCounter: instrument, createHistogram: instrument } as unknown as Meter
}

async function run (t: Test, opts: Partial<OutboundOptions>, n: number) {
  const [good, bad] = await Promise.all([healthy(t), failing(t)])
  const discovery = new StaticDiscovery({
    svc: [
      { ip: '127.0.0.1', port: good.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: bad.port, metadata: { version: 'v1' } }
    ]
  })
  const out: Measure[] = []
  // Ejection off: the failing instance keeps being picked, as a bad lane would go on failing.
  const d = new FlowTagDispatcher({ discovery, stableLane: 'v1', outlier: { maxEjectionPercent: 0 }, warmup: false, meter: recordingMeter(out), ...opts })
  t.teardown(() => d.close())
  let failed = 0
  await load(n, 10, async () => {
    try {
      const res = await request('http://svc/x', { dispatcher: d })
      await res.body.dump()
    } catch {
      failed++
    }
  })
  const sum = (name: string) => out.filter((m) => m.name === name).reduce((s, m) => s + m.value, 0)
  return { upstream: good.requests + bad.requests, failed, retries: sum('flowtag.outbound.retries'), refused: sum('flowtag.outbound.retries_refused'), out, snapshot: d.snapshot('svc') }
}

t.test('one instance failing every request: upstream requests per request stay ≤ 1 + the ratio', async (t) => {
  const n = 1000
  // A long interval and no floor: the bound is exact, whatever the machine's speed.
  const r = await run(t, { retryBudget: { percent: 20, intervalMs: 600_000, minRetriesPerSecond: 0 } }, n)
  t.comment(`${n} requests: ${r.upstream} sent upstream, ${r.retries} retries, ${r.refused} refused, ${r.failed} failed`)
  t.ok(r.upstream / n <= 1.2, `≤ 1.2 upstream per request (${(r.upstream / n).toFixed(3)})`)
  t.equal(r.upstream, n + r.retries, 'every retry is counted')
  t.ok(r.refused > 50, 'the budget refused retries (half of the first attempts fail: without it, 1.5 per request)')
  t.equal(r.failed, r.refused, 'a request whose retry was refused gets the failure')
  t.ok(r.retries > 0.15 * n, 'the budget is used: about 20 % of the requests were retried')
  t.match(r.out.find((m) => m.name === 'flowtag.outbound.retries_refused'), { attrs: { service: 'svc', lane: 'v1' } }, 'refusals are counted by service and lane')
  t.match(r.snapshot?.lanes.v1?.retryBudget, { requests: n, retries: r.retries, refused: r.refused }, 'the snapshot shows the lane budget')
})

t.test('the defaults bound retries too; retryBudget: false lets every retry through', async (t) => {
  const n = 1000
  const r = await run(t, {}, n)
  t.comment(`defaults: ${n} requests, ${r.upstream} upstream, ${r.refused} refused`)
  t.ok(r.refused > 0, 'the default budget (20 % over 10 s, at least 3/s) refused retries')
  t.ok(r.upstream / n < 1.4, `well under the 1.5 per request retries alone would send (${(r.upstream / n).toFixed(3)})`)

  const off = await run(t, { retryBudget: false }, n)
  t.comment(`off: ${n} requests, ${off.upstream} upstream`)
  t.equal(off.refused, 0)
  t.equal(off.failed, 0, 'every request failed on the bad instance was retried on the good one')
  t.ok(off.upstream / n > 1.35, `about half of the requests retried (${(off.upstream / n).toFixed(3)})`)
  t.equal(off.snapshot?.lanes.v1?.retryBudget, undefined)

  const perService = await run(t, { services: { svc: { retryBudget: false } } }, 200)
  t.equal(perService.failed, 0, 'services.<name>.retryBudget: false')
})
