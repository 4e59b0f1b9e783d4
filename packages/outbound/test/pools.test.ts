// One Pool per instance; a pool closes when its instance leaves the list, all on close().
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { FlowTagDispatcher } from '../src/index.ts'
import { load, startInstance, type Instance } from './fixtures/instances.ts'
import { waitFor } from '@flowtag/test-kit'

const at = (i: Instance) => ({ ip: '127.0.0.1', port: i.port })

t.test('pools are opened on use and closed when instances leave', async (t) => {
  const [a, b] = await Promise.all([startInstance(t, 'a'), startInstance(t, 'b')])
  const discovery = new StaticDiscovery({ svc: [at(a), at(b)] })
  const d = new FlowTagDispatcher({ discovery, keepAliveTimeout: 60_000 })
  t.teardown(() => d.close())
  const seen = new Set<string>()
  await load(60, 4, async () => {
    const res = await request('http://svc/x', { dispatcher: d })
    seen.add(((await res.body.json()) as { id: string }).id)
  })
  t.same([...seen].sort(), ['a', 'b'])
  t.equal(d.snapshot('svc')?.pools, 2)
  await waitFor('server-side connections', () => a.open > 0 && b.open > 0, 5000)

  discovery.set('svc', [at(b)])
  await waitFor('a to see its connections closed', () => a.open === 0, 10_000)
  t.equal(d.snapshot('svc')?.pools, 1)
  t.equal(d.snapshot('svc')?.instances, 1)
  t.ok(b.open > 0, 'b keeps its keep-alive connections')

  await d.close()
  await waitFor('b to see its connections closed', () => b.open === 0, 10_000)
  await t.rejects(request('http://svc/x', { dispatcher: d }), { code: 'FLOWTAG_OUTBOUND_CLOSED' })
})

t.test('an in-flight request finishes when its instance leaves', async (t) => {
  const a = await startInstance(t, 'a')
  const discovery = new StaticDiscovery({ svc: [at(a)] })
  const d = new FlowTagDispatcher({ discovery })
  t.teardown(() => d.close())
  const pending = request('http://svc/x?delay=300', { dispatcher: d })
  await waitFor('the request to be sent', () => a.open > 0, 5000)
  discovery.set('svc', [])
  const res = await pending
  t.equal(res.statusCode, 200)
  t.equal(((await res.body.json()) as { id: string }).id, 'a')
  await waitFor('the pool to close after the response', () => a.open === 0, 10_000)
  await t.rejects(request('http://svc/x', { dispatcher: d }), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE' })
})

t.test('destroy() fails in-flight requests at once', async (t) => {
  const a = await startInstance(t, 'a')
  const discovery = new StaticDiscovery({ svc: [at(a)] })
  const d = new FlowTagDispatcher({ discovery })
  const pending = request('http://svc/x?delay=5000', { dispatcher: d })
  await waitFor('the request to be sent', () => a.open > 0, 5000)
  await d.destroy(new Error('shutting down'))
  await t.rejects(pending, { message: 'shutting down' })
  await waitFor('the connection to be closed', () => a.open === 0, 10_000)
})
