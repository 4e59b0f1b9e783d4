// The dispatcher reads the discovery cache: one instances() call per service, then change events.
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery, type Discovery, type Instance, type ServiceListener } from '@flowtag/nacos'
import { FlowTagDispatcher } from '../src/index.ts'
import { load, startInstance } from './fixtures/instances.ts'

/** Wraps a StaticDiscovery: counts instances() calls, can delay or fail the first ones. */
class CountingDiscovery implements Discovery {
  calls = 0
  failures: number
  delayMs: number
  readonly inner: StaticDiscovery
  constructor (inner: StaticDiscovery, { failures = 0, delayMs = 0 } = {}) {
    this.inner = inner
    this.failures = failures
    this.delayMs = delayMs
  }

  async instances (service: string): Promise<Instance[]> {
    this.calls++
    await new Promise((r) => setTimeout(r, this.delayMs))
    if (this.failures-- > 0) throw new Error('registry down')
    return this.inner.instances(service)
  }

  subscribe (service: string, listener: ServiceListener): () => void {
    return this.inner.subscribe(service, listener)
  }

  close (): Promise<void> {
    return this.inner.close()
  }
}

t.test('concurrent first requests await one initial load; later ones never call the registry', async (t) => {
  const a = await startInstance(t, 'a')
  const discovery = new CountingDiscovery(new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: a.port }] }), { delayMs: 200 })
  const d = new FlowTagDispatcher({ discovery })
  t.teardown(() => d.close())
  const replies = await load(200, 20, async () => (await request('http://svc/x', { dispatcher: d })).body.json())
  t.equal(replies.length, 200)
  t.equal(discovery.calls, 1)
})

t.test('a failed initial load is a coded error, and the next request tries again', async (t) => {
  const a = await startInstance(t, 'a')
  const discovery = new CountingDiscovery(new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: a.port }] }), { failures: 1 })
  const d = new FlowTagDispatcher({ discovery })
  t.teardown(() => d.close())
  await t.rejects(request('http://svc/x', { dispatcher: d }), { code: 'FLOWTAG_OUTBOUND_DISCOVERY_FAILED', statusCode: 503, cause: { message: 'registry down' } })
  const res = await request('http://svc/x', { dispatcher: d })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(discovery.calls, 2)
})

t.test('a request without a usable origin is refused with a coded error', async (t) => {
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery() })
  t.teardown(() => d.close())
  await t.rejects(d.request({ path: '/', method: 'GET' }), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE' })
  await t.rejects(d.request({ origin: 'not a url', path: '/', method: 'GET' }), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE' })
  await t.rejects(d.request({ origin: new URL('http://ghost:8080'), path: '/', method: 'GET' }), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE', service: 'ghost' })
})
