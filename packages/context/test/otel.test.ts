import Fastify from 'fastify'
import t from 'tap'
import { context, propagation, trace } from '@opentelemetry/api'
import { fastifyFlowTag } from '../src/fastify.ts'
import { flowTag } from '../src/express.ts'
import { LANE_ATTRIBUTE } from '../src/index.ts'
import { express, listen } from './fixtures/express-app.ts'
import { recordingSpan, TestContextManager } from './fixtures/otel.ts'
import { request } from 'undici'

const manager = new TestContextManager()
context.setGlobalContextManager(manager)
t.teardown(() => context.disable())

const rules = { version: 1, rules: [], default: 'v2' }
const laneInBaggage = () => propagation.getBaggage(context.active())?.getEntry('flowtag.lane')?.value ?? null

t.test('Fastify: lane on the active span and in OTel baggage, also after a body', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const spans: Array<Record<string, unknown>> = []
  // stands in for OTel's HTTP instrumentation, which makes a server span active
  app.addHook('onRequest', (_req, _reply, done) => {
    const { span, attributes } = recordingSpan()
    spans.push(attributes)
    context.with(trace.setSpan(context.active(), span), done)
  })
  await app.register(fastifyFlowTag, { mode: 'edge', rules })
  app.post('/x', async () => ({ baggage: laneInBaggage(), span: trace.getActiveSpan() !== undefined }))
  const res = await app.inject({ method: 'POST', url: '/x', payload: { a: 1 } })
  t.same(res.json(), { baggage: 'v2', span: true })
  t.same(spans, [{ [LANE_ATTRIBUTE]: 'v2', 'flowtag.rule_version': 1 }], 'the default decided: no rule, the RuleSet version')
})

t.test('Fastify: otel: false leaves OTel alone; no span is fine', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyFlowTag, { mode: 'edge', rules, otel: false })
  app.get('/x', async () => ({ baggage: laneInBaggage() }))
  t.same((await app.inject({ url: '/x' })).json(), { baggage: null })
  const app2 = Fastify()
  t.teardown(() => app2.close())
  await app2.register(fastifyFlowTag, { mode: 'edge', rules })
  app2.get('/x', async () => ({ baggage: laneInBaggage() }))
  t.same((await app2.inject({ url: '/x' })).json(), { baggage: 'v2' })
})

t.test('Express: lane in OTel baggage', async (t) => {
  const app = express()
  app.use(flowTag({ mode: 'edge', rules }))
  app.use(express.json())
  app.post('/x', (_req, res) => { res.json({ baggage: laneInBaggage() }) })
  const server = await listen(app)
  t.teardown(server.close)
  const res = await request(`${server.origin}/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
  t.same(await res.body.json(), { baggage: 'v2' })
})
