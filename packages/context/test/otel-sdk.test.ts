// The lane and the matched rule on spans of the real OpenTelemetry SDK (in-memory exporter),
// with its AsyncLocalStorage context manager: what a deployed service's traces show.
import Fastify from 'fastify'
import t from 'tap'
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { AlwaysOffSampler, InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import type { RuleSetInput } from '@flowtag/rules'
import { fastifyFlowTag } from '../src/fastify.ts'
import { LANE_ATTRIBUTE, RULE_ATTRIBUTE, RULE_VERSION_ATTRIBUTE } from '../src/index.ts'

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
t.teardown(() => context.disable())

const rules: RuleSetInput = {
  version: 7,
  user: { header: 'x-user-id' },
  rules: [
    { name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' },
    { name: 'canary-split', when: { headers: { 'x-user-id': { exists: true } } }, split: { weights: { v2: 0, v1: 100 } } }
  ],
  default: 'v1'
}

async function appWith (provider: TracerProvider) {
  const tracer = provider.getTracer('test')
  const app = Fastify()
  // stands in for OTel's HTTP instrumentation: a server span active around the request
  app.addHook('onRequest', (req, reply, done) => {
    const span = tracer.startSpan(`GET ${req.url}`)
    reply.raw.on('finish', () => span.end())
    context.with(trace.setSpan(context.active(), span), done)
  })
  await app.register(fastifyFlowTag, { mode: 'edge', rules, trust: 'always' })
  app.get('/x', async (req) => ({ lane: req.flow.tag }))
  return app
}

t.test('a recording span carries the lane, the matched rule and the RuleSet version', async (t) => {
  const exporter = new InMemorySpanExporter()
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })
  t.teardown(() => provider.shutdown())
  const app = await appWith(provider)
  t.teardown(() => app.close())

  t.same((await app.inject({ url: '/x', headers: { 'x-tester': 'true' } })).json(), { lane: 'v2' })
  t.same((await app.inject({ url: '/x', headers: { 'x-user-id': 'u1' } })).json(), { lane: 'v1' })
  t.same((await app.inject({ url: '/x' })).json(), { lane: 'v1' })
  t.same((await app.inject({ url: '/x', headers: { 'x-flow-tag': 'v3' } })).json(), { lane: 'v3' })
  await provider.forceFlush()
  const spans = exporter.getFinishedSpans().map((s) => s.attributes)
  t.same(spans, [
    { [LANE_ATTRIBUTE]: 'v2', [RULE_ATTRIBUTE]: 'testers', [RULE_VERSION_ATTRIBUTE]: 7 },
    { [LANE_ATTRIBUTE]: 'v1', [RULE_ATTRIBUTE]: 'canary-split', [RULE_VERSION_ATTRIBUTE]: 7 },
    { [LANE_ATTRIBUTE]: 'v1', [RULE_VERSION_ATTRIBUTE]: 7 },
    { [LANE_ATTRIBUTE]: 'v3' }
  ], 'a rule, a split, the default (no rule), a trusted incoming tag (no rules involved)')
})

t.test('a span that is not sampled is left alone', async (t) => {
  const exporter = new InMemorySpanExporter()
  const provider = new TracerProvider({ sampler: new AlwaysOffSampler(), spanProcessors: [new SimpleSpanProcessor({ exporter })] })
  t.teardown(() => provider.shutdown())
  const app = await appWith(provider)
  t.teardown(() => app.close())
  t.same((await app.inject({ url: '/x', headers: { 'x-tester': 'true' } })).json(), { lane: 'v2' })
  await provider.forceFlush()
  t.same(exporter.getFinishedSpans(), [], 'nothing exported')
})
