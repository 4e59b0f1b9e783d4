// Divergence as a signal: the counters as a Prometheus scrape shows them (what the canary reads).
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import t from 'tap'
import { createShadowComparer } from '../src/index.ts'
import { json, pair, text } from './fixtures/answers.ts'

t.test('compared, diverged, differences by field, learning and truncated, labelled service, route, lane', async (t) => {
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  t.teardown(() => provider.shutdown())
  const c = createShadowComparer({ meter: provider.getMeter('test'), learn: { samples: 2, rate: 0 }, maxBodyBytes: 40 })
  // Two pairs learn (a secondary each), then three are judged: one diverges on /tier.
  for (let i = 0; i < 2; i++) c.compare({ ...pair(json({ tier: 'gold', at: i }), json({ tier: 'gold', at: i + 1 })), secondary: json({ tier: 'gold', at: i + 2 }) })
  c.compare(pair(json({ tier: 'gold', at: 1 }), json({ tier: 'gold', at: 2 })))
  c.compare(pair(json({ tier: 'gold', at: 1 }), json({ tier: 'silver', at: 2 })))
  c.compare(pair(text('0123456789'.repeat(5)), text('0123456789'.repeat(5)), { route: '/big', lane: 'v3' }))
  const { resourceMetrics } = await exporter.collect()
  const prom = new PrometheusSerializer().serialize(resourceMetrics)
  /** The sample of `name` with these labels (others, such as otel_scope_name, may follow). */
  const sample = (name: string, labels: string) => new RegExp(`^${name}\\{${labels.replace(/[/]/g, '\\/')}[^}]*\\} (\\d+)$`, 'm').exec(prom)?.[1]
  const v2 = 'service="user-service",route="/users/:id",lane="v2"'
  t.equal(sample('flowtag_shadow_learning_total', v2), '1', 'the first pair learned; the second brought the 2nd secondary and was judged')
  t.equal(sample('flowtag_shadow_compared_total', v2), '3')
  t.equal(sample('flowtag_shadow_diverged_total', v2), '1')
  t.equal(sample('flowtag_shadow_differences_total', v2 + ',field="/tier"'), '1')
  t.equal(sample('flowtag_shadow_truncated_total', v2), undefined, 'small bodies are not truncated')
  t.notMatch(prom, /field="\/at"/, 'the learned noise is never counted as a difference')
  const v3 = 'service="user-service",route="/big",lane="v3"'
  t.equal(sample('flowtag_shadow_truncated_total', v3), '1')
  t.equal(sample('flowtag_shadow_learning_total', v3), '1', 'noise is learned per route: /big has no secondary yet')
  t.notMatch(prom, /gold|silver|0123456789/, 'no body content in the metrics')
})

t.test('without a meter the global (no-op) one is used', async (t) => {
  const c = createShadowComparer({ learn: false })
  c.compare(pair(json({ a: 1 }), json({ a: 2 })))
  t.equal(c.report().routes[0]!.diverged, 1)
})
