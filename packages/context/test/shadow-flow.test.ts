import t from 'tap'
import { propagation, ROOT_CONTEXT, defaultTextMapGetter, defaultTextMapSetter } from '@opentelemetry/api'
import {
  createFlowTagger, currentFlow, FlowTagPropagator, flowFromContext, isShadow, readFlowHeaders, readShadowMarker, runWithFlow,
  shadowAllowsMethod, shadowCopyFlow, isShadowCopy, signTag, writeFlowHeaders, type Carrier
} from '../src/index.ts'
import type { RuleSetInput } from '@flowtag/rules'

const rules: RuleSetInput = {
  version: 2,
  services: { orders: { stable: 'v1', candidates: ['v2', 'v3'], mirror: { lane: 'v3', percent: 50 } } },
  rules: [
    { name: 'testers', when: { headers: { 'x-tester': { equals: '1' } } }, lane: 'v2', mirror: { lane: 'v3', percent: 100, methods: ['GET', 'POST'] } },
    { name: 'to-v3', when: { headers: { 'x-v3': { equals: '1' } } }, lane: 'v3', mirror: { lane: 'v3', percent: 100 } }
  ],
  default: 'v1'
}

t.test('writeFlowHeaders / readFlowHeaders carry the shadow marker like the tag', async (t) => {
  const h: Carrier = { baggage: 'a=1' }
  writeFlowHeaders(h, { tag: 'v3', shadow: true, baggage: {} })
  t.equal(h['x-flow-shadow'], '1')
  t.equal(h.baggage, 'a=1,flowtag.lane=v3,flowtag.shadow=1')
  t.same(readFlowHeaders(h), { tag: 'v3', decision: { tag: 'v3', reason: 'incoming tag' }, baggage: { a: '1' }, shadow: true })
  t.same(readFlowHeaders({ baggage: 'flowtag.lane=v3,flowtag.shadow=1' })?.shadow, true, 'baggage alone marks it')
  t.same(readFlowHeaders({ 'x-flow-shadow': '1' }), { shadow: true, baggage: {} }, 'a shadow without a lane is still a shadow')
  t.equal(readFlowHeaders({ 'x-flow-tag': 'v1', 'x-flow-shadow': 'yes' })?.shadow, undefined, 'only "1" marks a shadow')
  t.equal(readShadowMarker({ baggage: 'flowtag.shadow=0' }), false)
  t.equal(readShadowMarker({ baggage: 'x=1' }), false)
  // a flow that is not a shadow removes a copied marker: the flow says what the call is
  const copied: Carrier = { 'X-Flow-Shadow': '1', baggage: 'flowtag.shadow=1,b=2' }
  writeFlowHeaders(copied, { tag: 'v1', baggage: {} })
  t.same(copied, { 'x-flow-tag': 'v1', baggage: 'b=2,flowtag.lane=v1' })
  const untagged: Carrier = { baggage: 'flowtag.shadow=1,b=2' }
  writeFlowHeaders(untagged, { baggage: {} })
  t.same(untagged, { baggage: 'b=2' })
})

t.test('isShadow() inside and outside a shadow flow', async (t) => {
  t.equal(isShadow(), false)
  runWithFlow({ tag: 'v3', shadow: true, baggage: {} }, () => t.equal(isShadow(), true))
  runWithFlow({ tag: 'v3', baggage: {} }, () => t.equal(isShadow(), false))
})

t.test('the OTel propagator injects and extracts the marker', async (t) => {
  const p = new FlowTagPropagator()
  const carrier: Record<string, string> = {}
  runWithFlow({ tag: 'v3', shadow: true, baggage: {} }, () => p.inject(ROOT_CONTEXT, carrier, defaultTextMapSetter))
  t.equal(carrier['x-flow-shadow'], '1')
  t.match(carrier.baggage, /flowtag\.shadow=1/)
  t.equal(flowFromContext(p.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter))?.shadow, true)
  t.ok(p.fields().includes('x-flow-shadow'))
  t.ok(propagation)
})

t.test('the marker is honoured only where the tag is trusted', async (t) => {
  const edge = createFlowTagger({ mode: 'edge', rules, otel: false })
  const f = edge.decide({ headers: { 'x-flow-tag': 'v2', 'x-flow-shadow': '1' }, method: 'GET' })
  t.equal(f.shadow, undefined, 'untrusted: not a shadow')
  const svc = createFlowTagger({ mode: 'service', rules, otel: false, service: 'orders', trust: { cidrs: ['127.0.0.1'] } })
  const s = svc.decide({ headers: { 'x-flow-tag': 'v3', 'x-flow-shadow': '1' }, ip: '127.0.0.1', method: 'GET', random: () => 0 })
  t.equal(s.shadow, true)
  t.equal(s.tag, 'v3')
  t.equal(s.decision?.mirror, undefined, 'a shadow is never mirrored again')
  t.equal(svc.decide({ headers: { 'x-flow-tag': 'v3', 'x-flow-shadow': '1' }, ip: '10.0.0.1', method: 'GET' }).shadow, undefined, 'untrusted network')
  const bare = svc.decide({ headers: { 'x-flow-shadow': '1' }, ip: '127.0.0.1', method: 'GET' })
  t.same([bare.shadow, bare.tag], [true, 'v1'], 'a trusted marker without a lane: the rules give the lane, it stays a shadow')
  t.equal(svc.stats.shadows, 2)
  const key = { id: 'k', secret: '0123456789abcdef' }
  const signed = createFlowTagger({ mode: 'service', rules, otel: false, trust: { signed: { keys: [key] } } })
  const token = signTag('v3', 60, key)
  t.equal(signed.decide({ headers: { 'x-flow-tag': token, 'x-flow-shadow': '1' } }).shadow, true, 'with a valid signed tag')
  t.equal(signed.decide({ headers: { 'x-flow-tag': 'v3', 'x-flow-shadow': '1' } }).shadow, undefined, 'a plain tag is not trusted there, nor its marker')
})

t.test('the mirror draw: the rule\'s mirror, else the service entry\'s; methods; own lane never', async (t) => {
  let draw = 0.3
  const tagger = createFlowTagger({ mode: 'edge', rules, otel: false, service: 'orders' })
  const at = (headers: Record<string, string>, method = 'GET') => tagger.decide({ headers, method, random: () => draw }).decision
  t.same(at({ 'x-tester': '1' }, 'POST'), { tag: 'v2', rule: 'testers', reason: 'rule "testers" matched', mirror: { lane: 'v3' } })
  t.equal(at({ 'x-tester': '1' }, 'DELETE')?.mirror, undefined, 'not a listed method')
  t.equal(at({ 'x-v3': '1' })?.mirror, undefined, 'already in the mirror lane')
  t.same(at({})?.mirror, { lane: 'v3' }, 'default lane, service entry at 50%: drawn at 0.3')
  draw = 0.5
  t.equal(at({})?.mirror, undefined, 'not drawn at 0.5')
  t.equal(at({}, 'HEAD')?.mirror, undefined)
  draw = 0.49
  t.same(at({}, 'HEAD')?.mirror, { lane: 'v3' }, 'HEAD is a default method')
  t.equal(at({}, 'POST')?.mirror, undefined, 'POST is not')
  t.equal(tagger.stats.mirrored, 3)
  t.equal(at({ 'x-flow-shadow': '1' }, 'HEAD')?.mirror, undefined, 'an untrusted marker: not a shadow, but never copied again')
  const noService = createFlowTagger({ mode: 'edge', rules, otel: false })
  t.equal(noService.decide({ headers: {}, method: 'GET', random: () => 0 }).decision?.mirror, undefined, 'the service entry needs the service option')
  const trusted = createFlowTagger({ mode: 'service', rules, otel: false, service: 'orders' })
  t.same(trusted.decide({ headers: { 'x-flow-tag': 'v1' }, method: 'GET', random: () => 0 }).decision?.mirror, { lane: 'v3' }, 'a trusted tag: the service entry mirrors')
  // the decision objects of the compiled set stay shared and untouched
  draw = 0
  at({ 'x-tester': '1' })
  t.equal(tagger.decide({ headers: { 'x-tester': '1' }, method: 'PUT', random: () => 0 }).decision?.mirror, undefined)
})

t.test('a mirror draw is independent of the split draw with a shadow RuleSet', async (t) => {
  const withShadow = { version: 1, rules: [{ name: 'c', split: { weights: { v2: 10 } }, mirror: { lane: 'v3', percent: 10 } }], default: 'v1', shadow: { version: 2, rules: [], default: 'v1' } }
  const tagger = createFlowTagger({ mode: 'edge', rules: withShadow, otel: true })
  const seq = [0.05, 0.5]
  let i = 0
  const f = tagger.decide({ headers: {}, method: 'GET', random: () => seq[i++]! })
  t.equal(f.tag, 'v2', 'the split took 0.05')
  t.equal(f.decision?.mirror, undefined, 'the mirror drew 0.5: not the split\'s draw')
  t.equal(currentFlow(), undefined)
})

t.test('shadowAllowsMethod: safe methods always, others only when listed', async (t) => {
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'get']) t.ok(shadowAllowsMethod(m), m)
  for (const m of ['POST', 'PATCH', 'PUT', 'DELETE', 'CONNECT']) t.notOk(shadowAllowsMethod(m), m)
  t.ok(shadowAllowsMethod('put', new Set(['PUT'])))
  t.notOk(shadowAllowsMethod('POST', new Set(['PUT'])))
})

t.test('shadowCopyFlow: a shadow in the lane, marked as the copy itself', async (t) => {
  const f = shadowCopyFlow('v3')
  t.same(f, { tag: 'v3', shadow: true, baggage: {} })
  t.ok(isShadowCopy(f))
  t.notOk(isShadowCopy({ tag: 'v3', shadow: true, baggage: {} }), 'an ordinary shadow flow is not')
  t.notOk(isShadowCopy(undefined))
  t.same(shadowCopyFlow(undefined), { shadow: true, baggage: {} })
  const h: Carrier = {}
  writeFlowHeaders(h, f)
  t.equal(h['x-flow-shadow'], '1', 'it travels as a shadow')
})
