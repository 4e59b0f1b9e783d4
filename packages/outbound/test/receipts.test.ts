// Fallback receipts written by the dispatcher, against real instance processes on loopback.
import { createServer } from 'node:http'
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow, type FlowContext } from '@flowtag/context'
import { FlowTagDispatcher } from '../src/index.ts'
import { startInstance } from './fixtures/instances.ts'

const v1 = await startInstance(t, 'one', 'v1')
const at = (port: number, version: string) => ({ ip: '127.0.0.1', port, metadata: { version } })

async function call (d: FlowTagDispatcher, flow: FlowContext, service = 'user-service') {
  return runWithFlow(flow, async () => {
    const res = await request(`http://${service}/u`, { dispatcher: d })
    return (await res.body.json()) as { id: string; tag: string | null; baggage: string | null }
  })
}

t.test('no instance in the lane: one entry per hop, in baggage downstream', async (t) => {
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ 'user-service': [at(v1.port, 'v1')] }), stableLane: 'v1' })
  t.teardown(() => d.close())
  const flow: FlowContext = { tag: 'v2', baggage: {} }
  const r = await call(d, flow)
  t.equal(r.id, 'one')
  t.equal(flow.baggage['flowtag.fallback'], 'user-service:v2>v1(no-instance)')
  t.match(r.baggage, /flowtag\.fallback=user-service%3Av2%3Ev1\(no-instance\)/, 'the upstream sees it')
  await call(d, flow)
  t.equal(flow.baggage['flowtag.fallback'], 'user-service:v2>v1(no-instance)', 'never twice for the same hop')
  const inLane: FlowContext = { tag: 'v1', baggage: {} }
  await call(d, inLane)
  t.same(inLane.baggage, {}, 'no receipt when the lane served')
})

t.test('lease ran out: the stable lane serves, reason lease-expired', async (t) => {
  const v2 = await startInstance(t, 'two', 'v2')
  const d = new FlowTagDispatcher({
    discovery: new StaticDiscovery({ 'user-service': [at(v1.port, 'v1'), at(v2.port, 'v2')] }),
    stableLane: 'v1',
    lanes: () => ({ stable: 'v1', expired: ['v2'] })
  })
  t.teardown(() => d.close())
  const flow: FlowContext = { tag: 'v2', baggage: {} }
  t.equal((await call(d, flow)).id, 'one')
  t.equal(flow.baggage['flowtag.fallback'], 'user-service:v2>v1(lease-expired)')
})

t.test('receipts from upstream hops come back into the flow, bounded', async (t) => {
  const hops = Array.from({ length: 12 }, (_, i) => `svc-${i}:v2>v1(no-instance)`).join('|')
  const server = createServer((_req, res) => {
    res.setHeader('x-flowtag-fallback', `user-service:v2>v1(ejected)|junk entry|${hops}`)
    res.end('{"id":"deep","tag":null,"baggage":null}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ 'order-service': [at((server.address() as { port: number }).port, 'v2')] }), stableLane: 'v1' })
  t.teardown(() => d.close())
  const flow: FlowContext = { tag: 'v2', baggage: {} }
  await call(d, flow, 'order-service')
  const entries = flow.baggage['flowtag.fallback']!.split('|')
  t.equal(entries[0], 'user-service:v2>v1(ejected)')
  t.equal(entries.length, 8, 'at most 8 entries')
  t.notOk(entries.includes('junk entry'), 'malformed entries dropped')
})
