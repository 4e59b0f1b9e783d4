// The divergence gate's parts: the spec's `maxDivergence`, the shadow counters read from a
// process's Prometheus text, their window (restarts, processes that come later), the gate on a
// check, the report of `flowtag shadow report`, and the PrometheusSource's query of them.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { parseCanarySpec, parsePrometheusText, PrometheusSource, readingProblem, WindowTracker, type Judgement, type Reading } from '../src/index.ts'
import { summarize } from '../src/internals.ts'
import { shadowFromSamples, withDivergence, type ShadowFigures } from '../src/divergence.ts'
import { shadowReportFromTexts, shadowReportText } from '../src/shadow-report.ts'
import { emptyFigures } from '../src/window.ts'

const base = { service: 'order-service', candidate: 'v2', stable: 'v1' }

t.test('spec: maxDivergence as a share or an object; bad values name the field', async (t) => {
  t.equal(parseCanarySpec(base).maxDivergence, undefined, 'off by default')
  t.same(parseCanarySpec({ ...base, maxDivergence: 0.02 }).maxDivergence, { max: 0.02, minCompared: 100, action: 'pause' })
  t.same(parseCanarySpec({ ...base, maxDivergence: { max: 0.1, minCompared: 5, action: 'rollback' } }).maxDivergence, { max: 0.1, minCompared: 5, action: 'rollback' })
  const again = parseCanarySpec(JSON.parse(JSON.stringify(parseCanarySpec({ ...base, maxDivergence: 0.3 }))))
  t.same(again.maxDivergence, { max: 0.3, minCompared: 100, action: 'pause' }, 'a saved spec parses again the same (controller resume)')
  t.throws(() => parseCanarySpec({ ...base, maxDivergence: 1.5 }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /"maxDivergence"/ })
  t.throws(() => parseCanarySpec({ ...base, maxDivergence: { max: 0.1, minCompared: 0 } }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /"maxDivergence\.minCompared"/ })
  t.throws(() => parseCanarySpec({ ...base, maxDivergence: { max: 0.1, action: 'explode' } }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /"maxDivergence\.action"/ })
})

const TEXT = [
  '# TYPE flowtag_shadow_compared_total counter',
  'flowtag_shadow_compared_total{service="order-service",route="/a",lane="v2",otel_scope_name="x"} 30',
  'flowtag_shadow_compared_total{service="order-service",route="/b",lane="v2"} 10',
  'flowtag_shadow_compared_total{service="order-service",route="/b",lane="v3"} 7',
  'flowtag_shadow_compared_total{service="user-service",route="/u",lane="v2"} 99',
  'flowtag_shadow_diverged_total{service="order-service",route="/a",lane="v2"} 6',
  'flowtag_shadow_diverged_total{service="order-service",route="/b",lane="v2"} 1',
  'flowtag_shadow_differences_total{service="order-service",route="/a",lane="v2",field="/tier"} 6',
  'flowtag_shadow_differences_total{service="order-service",route="/a",lane="v2",field="status"} 2',
  'flowtag_shadow_learning_total{service="order-service",route="/a",lane="v2"} 20',
  'flowtag_shadow_truncated_total{service="order-service",route="/a",lane="v2"} 3',
  'flowtag_shadow_other_total{service="order-service",route="/a",lane="v2"} 3',
  'flowtag_shadow_compared_total{route="/nolabels"} 3'
].join('\n')

t.test('shadow counts of one service from Prometheus text, by mirror lane', async (t) => {
  const lanes = shadowFromSamples(parsePrometheusText(TEXT), 'order-service')
  t.same([...lanes], [['v2', { compared: 40, diverged: 7 }], ['v3', { compared: 7, diverged: 0 }]])
  t.same([...shadowFromSamples(parsePrometheusText('flowtag_shadow_compared{service="s"} 1'), 's')], [['none', { compared: 1, diverged: 0 }]], 'without a lane label: none')
})

const check = (verdict: Judgement['verdict'], reason = 'figures'): Judgement => ({ verdict, reason, candidate: summarize(emptyFigures()), stable: summarize(emptyFigures()), breaches: [], errorRateHigh: false })
const gate = { max: 0.05, minCompared: 10, action: 'pause' as const }

t.test('the gate on a check', async (t) => {
  const pass = check('pass')
  t.equal(withDivergence(pass, undefined, { compared: 0, diverged: 0 }), pass, 'no gate: as it is')
  t.match(withDivergence(pass, gate, { compared: 3, diverged: 0 }), { verdict: 'waiting', reason: '3 of 10 shadow pairs compared in the window' })
  t.match(withDivergence(check('waiting', 'few requests'), gate, { compared: 3, diverged: 3 }), { verdict: 'waiting', reason: '3 of 10 shadow pairs compared in the window; few requests' })
  const fail = check('fail', 'p99')
  t.equal(withDivergence(fail, gate, { compared: 3, diverged: 0 }), fail, 'a failing check stays failing while pairs are few')
  t.equal(withDivergence(pass, gate, { compared: 0, diverged: 0 }, false), pass, 'not required (a lane\'s service nobody compares): as it is')
  t.match(withDivergence(pass, gate, { compared: 3, diverged: 0 }, false), { verdict: 'waiting' }, 'not required, but compared: it waits for enough')
  t.match(withDivergence(pass, gate, { compared: 100, diverged: 5 }), { verdict: 'pass', reason: 'figures; shadow 5.0% of 100 pairs diverge', breaches: [] }, 'at the limit: passes')
  t.match(withDivergence(pass, gate, { compared: 100, diverged: 6 }), { verdict: 'fail', reason: /^divergence 6\.0% > 0\.05 \(shadow 6\.0% of 100 pairs diverge\); figures$/, breaches: [{ check: 'divergence', value: 0.06, threshold: 0.05, action: 'pause' }] })
  t.match(withDivergence(check('waiting'), gate, { compared: 100, diverged: 50 }), { verdict: 'fail' }, 'enough pairs diverge: fails though the requests are still few')
  t.match(withDivergence(check('waiting'), gate, { compared: 100, diverged: 0 }), { verdict: 'waiting' })
  t.match(withDivergence(fail, { ...gate, action: 'rollback' }, { compared: 10, diverged: 10 }), { verdict: 'fail', breaches: [{ check: 'divergence', action: 'rollback' }] })
})

function reading (at: number, shadow: Array<[string, Record<string, ShadowFigures> | undefined, number?]>): Reading {
  return { at, instances: new Map(), shadow: new Map(shadow.map(([key, lanes, startTime]) => [key, { key, lanes: lanes === undefined ? undefined : new Map(Object.entries(lanes)), ...(startTime === undefined ? {} : { startTime }) }])) }
}

t.test('the window sums each process\'s increments; restarts and late processes count right', async (t) => {
  const T0 = 1_800_000_000_000
  const w = new WindowTracker(reading(T0, [['gw-a', { v2: { compared: 100, diverged: 10 } }, 1000], ['gw-b', undefined]]))
  t.same(w.shadow('v2'), { compared: 0, diverged: 0 }, 'the opening is the zero')
  w.add(reading(T0 + 1000, [['gw-a', { v2: { compared: 150, diverged: 12 } }, 1000], ['gw-b', { v2: { compared: 500, diverged: 400 } }]]))
  t.same(w.shadow('v2'), { compared: 50, diverged: 2 }, 'gw-b unread at the opening: its first reading is its zero')
  w.add(reading(T0 + 2000, [['gw-a', { v2: { compared: 20, diverged: 1 } }, 5000], ['gw-b', { v2: { compared: 510, diverged: 401 } }]]))
  t.same(w.shadow('v2'), { compared: 80, diverged: 4 }, 'gw-a restarted (new start time): its new life counts from zero')
  w.add(reading(T0 + 3000, [['gw-a', { v2: { compared: 5, diverged: 0 } }], ['gw-b', undefined]]))
  t.same(w.shadow('v2'), { compared: 85, diverged: 4 }, 'a counter that went down: a new life too; an unread process carries on')
  w.add(reading(T0 + 4000, [['gw-c', { v2: { compared: 7, diverged: 7 } }, T0 / 1000 + 3], ['gw-d', { v2: { compared: 1000, diverged: 1000 } }, T0 / 1000 - 3600], ['gw-e', { v2: { compared: 1000, diverged: 1000 } }]]))
  t.same(w.shadow('v2'), { compared: 92, diverged: 11 }, 'a process born in the window counts from zero; an older one (or one that does not say) from its first reading')
  t.same(w.shadow('v3'), { compared: 0, diverged: 0 })
})

t.test('a reading with shadow counts that are not counts is invalid', async (t) => {
  t.equal(readingProblem(reading(1, [['gw', { v2: { compared: 3, diverged: 1 } }]])), undefined)
  t.match(readingProblem(reading(1, [['gw', { v2: { compared: Number.NaN, diverged: 0 } }]])), /shadow pairs compared by gw in v2: NaN/)
  t.match(readingProblem(reading(1, [['gw', { v2: { compared: 1, diverged: 2 } }]])), /shadow pairs diverged by gw in v2: 2/)
  t.match(readingProblem(reading(1, [['gw', { v2: { compared: 1, diverged: -1 } }]])), /diverged/)
})

t.test('flowtag shadow report: routes summed over processes, most diverging first', async (t) => {
  const routes = shadowReportFromTexts([TEXT, TEXT.replace('route="/b",lane="v2"} 10', 'route="/b",lane="v2"} 0')])
  t.same(routes.map((r) => [r.service, r.route, r.lane, r.compared, r.diverged]), [
    ['order-service', '/a', 'v2', 60, 12],
    ['order-service', '/b', 'v2', 10, 2],
    ['user-service', '/u', 'v2', 198, 0],
    ['order-service', '/b', 'v3', 14, 0]
  ], 'by share, then diverged count, then compared count')
  t.match(routes[0], { divergence: 0.2, learning: 40, truncated: 6, fields: [{ field: '/tier', count: 12 }, { field: 'status', count: 4 }] })
  t.same(shadowReportFromTexts([TEXT], { top: 1, fields: 1, service: 'order-service' }).map((r) => [r.route, r.fields]), [['/a', [{ field: '/tier', count: 6 }]]])
  t.same(shadowReportFromTexts(['flowtag_shadow_differences_total{service="s",route="/r",lane="v2"} 1']).map((r) => [r.divergence, r.fields]), [[0, [{ field: '(unknown)', count: 1 }]]])
  const text = shadowReportText(routes)
  t.match(text.split('\n')[1], /^order-service\s+\/a\s+v2\s+60\s+12\s+20\.0%\s+40$/)
  t.match(text.split('\n')[2], /^\s+\/tier\s+12$/)
  t.match(shadowReportText([]), /no shadow pairs compared/)
  const tied = shadowReportFromTexts(['flowtag_shadow_differences_total{service="s",route="/r",lane="v2",field="/b"} 2\nflowtag_shadow_differences_total{service="s",route="/r",lane="v2",field="/a"} 2\nflowtag_shadow_compared_total{service="s",lane="v2"} 1'])
  t.same(tied.map((r) => r.fields.map((f) => f.field)), [['/a', '/b']], 'equal counts by name; a sample without its route is left out')
})

t.test('PrometheusSource: the query of the shadow counters', async (t) => {
  const q = new PrometheusSource({ url: 'http://127.0.0.1:9' }).queries('order-service')
  t.equal(q.shadow, 'sum by (__name__, instance, lane) ({__name__=~"flowtag_shadow_(compared|diverged)(_total)?", service="order-service"})')
  t.match(new PrometheusSource({ url: 'http://127.0.0.1:9', serviceLabel: 'service', matchers: 'env="prod"' }).queries('order-service').shadow, 'exported_service="order-service", env="prod"', 'the target label named service renames theirs')
})

t.test('PrometheusSource reads the shadow counters of whoever compares them, from a real Prometheus', async (t) => {
  const text = 'flowtag_shadow_compared_total{service="order-service",route="/a",lane="v2"} 40\nflowtag_shadow_diverged_total{service="order-service",route="/a",lane="v2"} 8\nflowtag_shadow_compared_total{service="order-service",route="/b",lane="v2"} 2\n'
  const server = createServer((req, res) => { res.end(req.url === '/metrics' ? text : '') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const target = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-prom-'))
  const port = await freePort()
  await writeFile(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: ['${target}']\n`)
  const child = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: 'ignore' })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = once(child, 'exit')
      child.kill('SIGKILL')
      await gone
    }
    await rm(dir, { recursive: true, force: true })
  })
  const source = new PrometheusSource({ url: `http://127.0.0.1:${port}` })
  let r: Reading | undefined
  await waitFor('Prometheus to have scraped the gateway', async () => {
    r = await source.read('order-service').catch(() => undefined)
    return r?.shadow?.get(target) !== undefined
  }, 30_000)
  t.same([...r!.shadow!.get(target)!.lanes!], [['v2', { compared: 42, diverged: 8 }]], 'summed over routes, by mirror lane, keyed by the comparing instance')
  t.equal(r!.instances.size, 0, 'the gateway is no instance of order-service')
})
