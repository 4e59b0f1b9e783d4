// Retries, passive outlier ejection and readmission against real processes that die.
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { FlowTagDispatcher } from '../src/index.ts'
import { load, startInstance, type Instance } from './fixtures/instances.ts'
import { waitFor } from '@flowtag/test-kit'

const at = (i: Instance) => ({ ip: '127.0.0.1', port: i.port })

async function call (dispatcher: FlowTagDispatcher, url: string, method: 'GET' | 'POST' = 'GET'): Promise<{ ok: boolean; id?: string; code?: string }> {
  try {
    const res = await request(url, { dispatcher, method, body: method === 'POST' ? 'payload' : undefined })
    const body = (await res.body.json()) as { id: string }
    return { ok: res.statusCode === 200, id: body.id }
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code }
  }
}

t.test('an instance killed mid-load: no idempotent request fails, it is ejected, then readmitted', async (t) => {
  const [a, b, c] = await Promise.all([startInstance(t, 'a'), startInstance(t, 'b'), startInstance(t, 'c')])
  const bPort = b.port
  const discovery = new StaticDiscovery({ svc: [at(a), at(b), at(c)] })
  const d = new FlowTagDispatcher({ discovery, outlier: { consecutiveFailures: 3, baseEjectionMs: 4000 } })
  t.teardown(() => d.close())

  let done = 0
  let killed: Promise<void> | undefined
  const results = await load(300, 10, async () => {
    const r = await call(d, 'http://svc/users/1')
    if (++done === 60) killed = b.kill()
    return r
  })
  await killed
  t.equal(results.filter((r) => !r.ok).length, 0, 'no request failed')
  t.ok(results.slice(0, 60).some((r) => r.id === 'b'), 'b served before it died')
  t.same(d.snapshot('svc')?.ejected, [`127.0.0.1:${bPort}`], 'the dead instance is ejected')
  t.equal(d.snapshot('svc')?.available, 2)

  // It comes back on the same port; after its ejection time it is picked again.
  await startInstance(t, 'b', '', bPort)
  await waitFor('readmission', () => d.snapshot('svc')?.ejected.length === 0, 15_000)
  const after = await load(150, 5, () => call(d, 'http://svc/users/1'))
  t.ok(after.every((r) => r.ok))
  t.ok(after.some((r) => r.id === 'b'), 'b serves again')
})

t.test('non-idempotent requests are not retried; GETs on the same instances are', async (t) => {
  const [alive, dead] = await Promise.all([startInstance(t, 'alive'), startInstance(t, 'dead')])
  await dead.kill()
  const discovery = new StaticDiscovery({ svc: [at(alive), at(dead)] })
  // No ejection, so the dead instance keeps being picked.
  const d = new FlowTagDispatcher({ discovery, outlier: { maxEjectionPercent: 0 } })
  t.teardown(() => d.close())
  const posts = await load(30, 3, () => call(d, 'http://svc/orders', 'POST'))
  const failed = posts.filter((r) => !r.ok)
  t.ok(failed.length > 0, `some POSTs hit the dead instance (${failed.length}/30)`)
  t.ok(failed.every((r) => r.code === 'ECONNREFUSED'), 'and failed with the connection error')
  const gets = await load(30, 3, () => call(d, 'http://svc/orders'))
  t.ok(gets.every((r) => r.ok && r.id === 'alive'), 'every GET was retried on the live instance')
  t.same(d.snapshot('svc')?.ejected, [])
})

t.test('when every instance is ejected the error is FLOWTAG_OUTBOUND_ALL_EJECTED', async (t) => {
  const only = await startInstance(t, 'only')
  await only.kill()
  const discovery = new StaticDiscovery({ svc: [at(only)] })
  const d = new FlowTagDispatcher({ discovery, outlier: { consecutiveFailures: 1, baseEjectionMs: 60_000 } })
  t.teardown(() => d.close())
  t.match(await call(d, 'http://svc/x'), { ok: false, code: 'ECONNREFUSED' }, 'nothing else to retry on')
  await t.rejects(request('http://svc/x', { dispatcher: d }), { code: 'FLOWTAG_OUTBOUND_ALL_EJECTED', statusCode: 503 })
})

t.test('at most maxEjectionPercent of a service is ejected at once', async (t) => {
  const insts = await Promise.all(['p', 'q', 'r', 's'].map((id) => startInstance(t, id)))
  await Promise.all(insts.map((i) => i.kill()))
  const discovery = new StaticDiscovery({ svc: insts.map(at) })
  const d = new FlowTagDispatcher({ discovery, maxRetries: 0, outlier: { consecutiveFailures: 1, maxEjectionPercent: 50, baseEjectionMs: 60_000 } })
  t.teardown(() => d.close())
  await load(40, 4, () => call(d, 'http://svc/x'))
  t.equal(d.snapshot('svc')?.ejected.length, 2, 'two of four')
  t.equal(d.snapshot('svc')?.available, 2)
})

t.test('headers timeout is configurable and not retried', async (t) => {
  const slow = await startInstance(t, 'slow')
  const discovery = new StaticDiscovery({ svc: [at(slow)] })
  const d = new FlowTagDispatcher({ discovery, headersTimeout: 100 })
  t.teardown(() => d.close())
  // undici 8 times headers with its coarse timers (ticks of ≈ 0.5 s): 100 ms fires within about
  // 1 s, so the answer comes well after that (a 1 s delay raced it).
  t.match(await call(d, 'http://svc/x?delay=4000'), { ok: false, code: 'UND_ERR_HEADERS_TIMEOUT' })
  t.match(await call(d, 'http://svc/x'), { ok: true, id: 'slow' })
})

t.test('a caller abort is passed to the live attempt and never counts against the instance', async (t) => {
  const a = await startInstance(t, 'a')
  const discovery = new StaticDiscovery({ svc: [at(a)] })
  const d = new FlowTagDispatcher({ discovery, outlier: { consecutiveFailures: 1 } })
  t.teardown(() => d.close())
  const ac = new AbortController()
  const pending = request('http://svc/x?delay=2000', { dispatcher: d, signal: ac.signal })
  await waitFor('the request to be sent', () => a.open > 0, 5000)
  ac.abort()
  await t.rejects(pending, { name: 'AbortError' })
  t.same(d.snapshot('svc')?.ejected, [], 'not ejected')
  t.match(await call(d, 'http://svc/x'), { ok: true, id: 'a' })
})

t.test('5xx answers eject an instance only when outlier.count5xx is on', async (t) => {
  const [good, sick] = await Promise.all([startInstance(t, 'good'), startInstance(t, 'sick', '', 0, { STATUS: '503' })])
  for (const count5xx of [false, true]) {
    const discovery = new StaticDiscovery({ svc: [at(good), at(sick)] })
    const d = new FlowTagDispatcher({ discovery, outlier: { consecutiveFailures: 3, baseEjectionMs: 60_000, count5xx } })
    const statuses: number[] = []
    for (let i = 0; i < 40; i++) {
      const res = await request('http://svc/x', { dispatcher: d })
      await res.body.dump()
      statuses.push(res.statusCode)
    }
    if (count5xx) {
      t.same(d.snapshot('svc')?.ejected, [`127.0.0.1:${sick.port}`], 'three 503s in a row eject it')
      t.ok(statuses.slice(-10).every((s) => s === 200), 'then only the good instance answers')
    } else {
      t.same(d.snapshot('svc')?.ejected, [], 'by default a 503 is an answer, not a failure')
      t.ok(statuses.slice(-20).includes(503), 'so the sick instance keeps being picked')
    }
    await d.close()
  }
})
