import t from 'tap'
import { defaultTextMapGetter, defaultTextMapSetter, propagation, ROOT_CONTEXT, type TextMapSetter } from '@opentelemetry/api'
import { contextWithFlow, flowFromContext, FlowTagPropagator, runWithFlow, type FlowContext } from '../src/index.ts'

const flow: FlowContext = { tag: 'v2', baggage: { tenant: 'acme co' } }

t.test('fields() names the headers it writes', async (t) => {
  t.same(new FlowTagPropagator().fields(), ['x-flow-tag', 'x-flow-shadow', 'baggage'])
})

t.test('inject writes the context\'s flow through the setter, else the current flow', async (t) => {
  const p = new FlowTagPropagator()
  const fromCtx: Record<string, string> = {}
  p.inject(contextWithFlow(ROOT_CONTEXT, flow), fromCtx, defaultTextMapSetter)
  t.same(fromCtx, { 'x-flow-tag': 'v2', baggage: 'flowtag.lane=v2,tenant=acme%20co' })

  const fromAls: Record<string, string> = {}
  runWithFlow({ tag: 'v3', baggage: {} }, () => p.inject(ROOT_CONTEXT, fromAls, defaultTextMapSetter))
  t.same(fromAls, { 'x-flow-tag': 'v3', baggage: 'flowtag.lane=v3' })

  const none: Record<string, string> = {}
  p.inject(ROOT_CONTEXT, none, defaultTextMapSetter)
  t.same(none, {}, 'outside a flow nothing is written')
})

t.test('inject merges with baggage an earlier propagator wrote, and works with any setter', async (t) => {
  const p = new FlowTagPropagator()
  const carrier: Record<string, string> = { baggage: 'userId=7,flowtag.lane=v1' }
  p.inject(contextWithFlow(ROOT_CONTEXT, { tag: 'v2', baggage: {} }), carrier, defaultTextMapSetter)
  t.same(carrier, { 'x-flow-tag': 'v2', baggage: 'userId=7,flowtag.lane=v2' }, 'stale lane replaced, others kept')

  // a carrier only reachable through its setter (a Map, gRPC metadata): each field set once
  const calls: [string, string][] = []
  const setter: TextMapSetter<Map<string, string>> = { set: (c, k, v) => { calls.push([k, v]); c.set(k, v) } }
  const map = new Map<string, string>()
  p.inject(contextWithFlow(ROOT_CONTEXT, flow), map, setter)
  t.same(calls, [['x-flow-tag', 'v2'], ['baggage', 'flowtag.lane=v2,tenant=acme%20co']])

  const bad: Record<string, string> = {}
  p.inject(contextWithFlow(ROOT_CONTEXT, { tag: 'not a lane', baggage: {} }), bad, defaultTextMapSetter)
  t.same(bad, {}, 'an invalid tag is never written')
})

t.test('extract reads through the getter into the context; no valid tag leaves it unchanged', async (t) => {
  const p = new FlowTagPropagator()
  const ctx = p.extract(ROOT_CONTEXT, { 'x-flow-tag': 'v4', baggage: 'tenant=acme%20co' }, defaultTextMapGetter)
  t.same(flowFromContext(ctx), { tag: 'v4', decision: { tag: 'v4', reason: 'incoming tag' }, baggage: { tenant: 'acme co' } })
  t.equal(flowFromContext(p.extract(ROOT_CONTEXT, { baggage: 'flowtag.lane=v9' }, defaultTextMapGetter))?.tag, 'v9')
  t.equal(p.extract(ROOT_CONTEXT, { 'x-flow-tag': 'bad tag' }, defaultTextMapGetter), ROOT_CONTEXT)
  t.equal(p.extract(ROOT_CONTEXT, {}, defaultTextMapGetter), ROOT_CONTEXT)
  t.equal(flowFromContext(ROOT_CONTEXT), undefined)
})

t.test('as the global propagator, OTel\'s propagation API round-trips the flow', async (t) => {
  t.ok(propagation.setGlobalPropagator(new FlowTagPropagator()))
  t.teardown(() => propagation.disable())
  t.same(propagation.fields(), ['x-flow-tag', 'x-flow-shadow', 'baggage'])
  const headers: Record<string, string> = {}
  propagation.inject(contextWithFlow(ROOT_CONTEXT, flow), headers)
  const back = flowFromContext(propagation.extract(ROOT_CONTEXT, headers))
  t.equal(back?.tag, 'v2')
  t.same(back?.baggage, { tenant: 'acme co' })
})
