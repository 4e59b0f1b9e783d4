// Consumer-only instances (@flowtag/mq registers message consumers with `flowtag.role: consumer`
// and their health or metrics port) are never picked by HTTP callers: a lane whose only
// instances consume messages falls back as an empty lane. Real instance processes on loopback;
// the "consumer" is a real server too, so a misrouted request would be answered and counted.
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagDispatcher } from '../src/index.ts'
import { callTargets, takesCalls, type Instance as Listed } from '../src/lanes-entry.ts'
import { startInstance } from './fixtures/instances.ts'

async function id (d: FlowTagDispatcher, tag?: string): Promise<string> {
  const call = async () => {
    const res = await request('http://user-service/u', { dispatcher: d })
    return ((await res.body.json()) as { id: string }).id
  }
  return tag === undefined ? await call() : await runWithFlow({ tag, baggage: {} }, call)
}

const listed = (metadata: Record<string, string>): Listed => ({ ip: '127.0.0.1', port: 1, weight: 1, healthy: true, enabled: true, metadata })

t.test('takesCalls: only an instance whose every role is consumer is left out', async (t) => {
  t.ok(takesCalls(listed({})))
  t.ok(takesCalls(listed({ 'flowtag.role': '' })))
  t.notOk(takesCalls(listed({ 'flowtag.role': 'consumer' })))
  t.notOk(takesCalls(listed({ 'flowtag.role': ' consumer , consumer' })))
  t.ok(takesCalls(listed({ 'flowtag.role': 'http,consumer' })), 'a service that also consumes takes calls')
  const all = [listed({}), listed({ version: 'v2' })]
  t.equal(callTargets(all), all, 'nothing left out: the same list')
  t.equal(callTargets([...all, listed({ 'flowtag.role': 'consumer' })]).length, 2)
})

t.test('HTTP callers never pick a consumer-only instance', async (t) => {
  const [stable, canary, consumer] = await Promise.all([startInstance(t, 'stable', 'v1'), startInstance(t, 'canary', 'v2'), startInstance(t, 'consumer', 'v3')])
  const at = (port: number, metadata: Record<string, string>) => ({ ip: '127.0.0.1', port, metadata })
  const asConsumer = (lane: string) => at(consumer.port, { version: lane, 'flowtag.role': 'consumer', 'flowtag.consumer': 'orders' })
  const discovery = new StaticDiscovery({ 'user-service': [at(stable.port, { version: 'v1' }), asConsumer('v3')] })
  const d = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => d.close())

  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) seen.add(await id(d, 'v3'))
  t.same([...seen], ['stable'], 'a lane with only a consumer falls back to stable')
  for (let i = 0; i < 20; i++) seen.add(await id(d))
  t.same([...seen], ['stable'], 'untagged calls never reach it')

  // the consumer in the same lane as an HTTP instance of it: the lane's calls all go to the HTTP one
  discovery.set('user-service', [at(stable.port, { version: 'v1' }), at(canary.port, { version: 'v2' }), asConsumer('v2')])
  await new Promise((resolve) => setTimeout(resolve, 50))
  const v2 = new Set<string>()
  for (let i = 0; i < 30; i++) v2.add(await id(d, 'v2'))
  t.same([...v2], ['canary'])

  // strict: a lane whose only instance consumes messages has no instance for calls
  const strict = new FlowTagDispatcher({ discovery: new StaticDiscovery({ 'user-service': [at(stable.port, { version: 'v1' }), asConsumer('v3')] }), stableLane: 'v1', lanes: () => ({ stable: 'v1', strict: true }) })
  t.teardown(() => strict.close())
  await t.rejects(id(strict, 'v3'), { code: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE' })
})
