// The README's wiring: lanes() read from a live RuleStore follows rule changes with no restart.
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { createRuleStore, serviceLanes, staticSource } from '@flowtag/rules'
import { FlowTagDispatcher } from '../src/index.ts'
import { load, startInstance } from './fixtures/instances.ts'
import { waitFor } from '@flowtag/test-kit'

const doc = (services: object) => ({ version: 1, default: 'v1', rules: [], services })

t.test('lanes from a RuleStore: weights and strictness change live', async (t) => {
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const discovery = new StaticDiscovery({
    'user-service': [
      { ip: '127.0.0.1', port: v1.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: v2.port, metadata: { version: 'v2' } }
    ]
  })
  const source = staticSource(doc({ 'user-service': { stable: 'v1', candidates: ['v2'] } }))
  const store = createRuleStore({ source })
  t.teardown(() => store.close())
  await store.ready
  const dispatcher = new FlowTagDispatcher({ discovery, lanes: (service) => serviceLanes(store.current, service) })
  t.teardown(() => dispatcher.close())
  const ids = async (n: number) => {
    const replies = await load(n, 5, async () => ((await (await request('http://user-service/', { dispatcher })).body.json()) as { id: string }).id)
    return new Set(replies)
  }

  t.same([...(await ids(40))], ['one'], 'untagged traffic: the stable lane of the RuleSet')

  source.set(doc({ 'user-service': { stable: 'v1', candidates: ['v2'], weights: { v1: 0, v2: 100 } } }))
  await waitFor('the new RuleSet', () => serviceLanes(store.current, 'user-service')?.weights !== undefined, 5000)
  t.same([...(await ids(40))], ['two'], 'all untagged traffic moved to v2 by weight')

  const fallback = await runWithFlow({ tag: 'v9', baggage: {} }, () => request('http://user-service/', { dispatcher }))
  t.match(await fallback.body.json(), { id: 'one', tag: 'v9' }, 'non-strict: an empty lane falls back to stable (weights are for untagged traffic only)')
  source.set(doc({ 'user-service': { stable: 'v1', candidates: ['v2'], strict: true } }))
  await waitFor('the strict RuleSet', () => serviceLanes(store.current, 'user-service')?.strict === true, 5000)
  await runWithFlow({ tag: 'v9', baggage: {} }, () => t.rejects(request('http://user-service/', { dispatcher }), { code: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE' }))
})
