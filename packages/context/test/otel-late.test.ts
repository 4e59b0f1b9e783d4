import Fastify from 'fastify'
import t from 'tap'
import { context, propagation } from '@opentelemetry/api'
import { fastifyFlowTag } from '../src/fastify.ts'
import { TestContextManager } from './fixtures/otel.ts'

t.test('no OTel SDK: nothing to do; an SDK registered later is picked up', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close(); context.disable() })
  await app.register(fastifyFlowTag, { mode: 'edge', rules: { version: 1, default: 'v3' } })
  app.get('/x', async (req) => ({ tag: req.flow.tag, baggage: propagation.getBaggage(context.active())?.getEntry('flowtag.lane')?.value ?? null }))
  t.same((await app.inject({ url: '/x' })).json(), { tag: 'v3', baggage: null }, 'works without any OTel SDK')
  context.setGlobalContextManager(new TestContextManager())
  // the absence of a manager is re-checked every 256 requests
  let seenAfter = -1
  for (let i = 0; i < 300 && seenAfter === -1; i++) {
    if ((await app.inject({ url: '/x' })).json().baggage === 'v3') seenAfter = i
  }
  t.ok(seenAfter >= 0 && seenAfter < 256, `lane in OTel baggage once a context manager exists (after ${seenAfter} requests)`)
  t.same((await app.inject({ url: '/x' })).json(), { tag: 'v3', baggage: 'v3' }, 'and from then on')
})
