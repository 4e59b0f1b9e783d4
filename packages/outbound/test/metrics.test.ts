import t from 'tap'
import type { Meter } from '@opentelemetry/api'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagDispatcher } from '../src/index.ts'
import { startInstance } from './fixtures/instances.ts'

type Record_ = { name: string; value: number; attrs: Record<string, unknown> }

/** A Meter that remembers every measurement. */
function recordingMeter (out: Record_[]): Meter {
  const instrument = (name: string) => ({
    add: (value: number, attrs: Record<string, unknown> = {}) => out.push({ name, value, attrs }),
    record: (value: number, attrs: Record<string, unknown> = {}) => out.push({ name, value, attrs })
  })
  return { createCounter: instrument, createHistogram: instrument } as unknown as Meter
}

t.test('requests, errors, retries and durations by service, lane and instance', async (t) => {
  const [a, dead] = await Promise.all([startInstance(t, 'a', 'v2'), startInstance(t, 'dead', 'v2')])
  await dead.kill()
  const out: Record_[] = []
  const discovery = new StaticDiscovery({
    svc: [
      { ip: '127.0.0.1', port: a.port, metadata: { version: 'v2' }, weight: 1 },
      { ip: '127.0.0.1', port: dead.port, metadata: { version: 'v2' }, weight: 100_000 }
    ]
  })
  const d = new FlowTagDispatcher({ discovery, meter: recordingMeter(out), outlier: { maxEjectionPercent: 0 } })
  t.teardown(() => d.close())

  const res = await runWithFlow({ tag: 'v2', baggage: {} }, () => request('http://svc/x', { dispatcher: d }))
  await res.body.dump()
  const instance = `127.0.0.1:${a.port}`
  t.match(
    out.filter((m) => m.name === 'flowtag.outbound.requests'),
    [{ value: 1, attrs: { service: 'svc', lane: 'v2', instance } }]
  )
  t.match(
    out.filter((m) => m.name === 'flowtag.outbound.retries'),
    [{ value: 1, attrs: { service: 'svc', lane: 'v2', instance } }],
    'the heavy dead instance was picked first, then retried on a'
  )
  const duration = out.find((m) => m.name === 'http.client.request.duration')
  t.ok(duration !== undefined && duration.value > 0 && duration.value < 1, 'duration in seconds recorded (semconv)')

  out.length = 0
  await t.rejects(request('http://nobody/x', { dispatcher: d }))
  t.match(out, [
    { name: 'flowtag.outbound.requests', attrs: { service: 'nobody' } },
    { name: 'flowtag.outbound.errors', value: 1, attrs: { service: 'nobody', 'error.type': 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE' } }
  ])

  out.length = 0
  // POST is not retried: the dead instance (picked first, by weight) fails it.
  await runWithFlow({ tag: 'v2', baggage: {} }, () => t.rejects(request('http://svc/x', { dispatcher: d, method: 'POST', body: 'x' })))
  t.match(out.find((m) => m.name === 'flowtag.outbound.errors'), { attrs: { 'error.type': 'ECONNREFUSED', instance: `127.0.0.1:${dead.port}` } })
})

t.test('an ejection is counted and logged, and so is the readmission', async (t) => {
  const [a, dead] = await Promise.all([startInstance(t, 'a', 'v2'), startInstance(t, 'dead', 'v2')])
  await dead.kill()
  const out: Record_[] = []
  const logged: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = []
  const logger = {
    warn: (obj: object, msg: string) => logged.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    info: (obj: object, msg: string) => logged.push({ level: 'info', obj: obj as Record<string, unknown>, msg })
  }
  const discovery = new StaticDiscovery({
    svc: [
      { ip: '127.0.0.1', port: a.port, metadata: { version: 'v2' }, weight: 1 },
      { ip: '127.0.0.1', port: dead.port, metadata: { version: 'v2' }, weight: 100_000 }
    ]
  })
  const d = new FlowTagDispatcher({ discovery, meter: recordingMeter(out), logger, outlier: { consecutiveFailures: 1, baseEjectionMs: 200, maxEjectionMs: 200 } })
  t.teardown(() => d.close())
  const res = await runWithFlow({ tag: 'v2', baggage: {} }, () => request('http://svc/x', { dispatcher: d }))
  await res.body.dump()
  const instance = `127.0.0.1:${dead.port}`
  t.match(out.filter((m) => m.name === 'flowtag.outbound.ejections'), [{ value: 1, attrs: { service: 'svc', lane: 'v2', instance } }])
  t.match(logged, [{ level: 'warn', obj: { service: 'svc', lane: 'v2', instance, ejectedForMs: 200, timesEjected: 1 }, msg: /ejected/ }])
  t.same(d.snapshot('svc')?.ejected, [instance])
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.match(logged[1], { level: 'info', obj: { instance }, msg: /readmitted/ })
  t.same(d.snapshot('svc')?.ejected, [])
})

t.test('a bad logger is refused by name', async (t) => {
  t.throws(() => new FlowTagDispatcher({ discovery: new StaticDiscovery(), logger: {} as never }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /"logger"/ })
})

t.test('ejections and fallbacks out of the requested lane are counted', async (t) => {
  const [a, dead] = await Promise.all([startInstance(t, 'a', 'v1'), startInstance(t, 'dead', 'v1')])
  await dead.kill()
  const out: Record_[] = []
  const discovery = new StaticDiscovery({
    svc: [
      { ip: '127.0.0.1', port: a.port, metadata: { version: 'v1' }, weight: 1 },
      { ip: '127.0.0.1', port: dead.port, metadata: { version: 'v1' }, weight: 100_000 }
    ]
  })
  const d = new FlowTagDispatcher({ discovery, meter: recordingMeter(out), stableLane: 'v1', outlier: { consecutiveFailures: 1 } })
  t.teardown(() => d.close())
  // lane v2 has no instance: served by the stable lane v1, a fallback
  const res = await runWithFlow({ tag: 'v2', baggage: {} }, () => request('http://svc/x', { dispatcher: d }))
  await res.body.dump()
  t.match(out.filter((m) => m.name === 'flowtag.outbound.ejections'), [{ value: 1, attrs: { service: 'svc', lane: 'v1', instance: `127.0.0.1:${dead.port}` } }])
  t.match(out.filter((m) => m.name === 'flowtag.outbound.fallbacks'), [{ value: 1, attrs: { service: 'svc', lane: 'v1', 'flowtag.lane.requested': 'v2' } }])
  out.length = 0
  const again = await runWithFlow({ tag: 'v1', baggage: {} }, () => request('http://svc/x', { dispatcher: d }))
  await again.body.dump()
  t.equal(out.filter((m) => m.name === 'flowtag.outbound.fallbacks' || m.name === 'flowtag.outbound.ejections').length, 0, 'in its own lane: no fallback; ejected instance not retried')
})
