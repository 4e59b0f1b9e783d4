// The transport-neutral lane rules (`@flowtag/outbound/lanes`) over plain members, as the gRPC picker uses them.
import t from 'tap'
import { LaneIndex, OutlierDetector, freshOutlierState, resolveRoute, type OutlierState } from '../src/lanes-entry.ts'

interface M extends OutlierState {
  name: string
  lane: string
  weight: number
}

const member = (name: string, lane: string, weight = 1): M => ({ name, lane, weight, ...freshOutlierState() })
const index = (ms: M[]) => new LaneIndex('svc', ms, (m) => ({ lane: m.lane, weight: m.weight, pickable: m.ejectedUntil === 0, ejected: m.ejectedUntil !== 0 }))

t.test('tagged, fallback, strict and unknown service', async (t) => {
  const ms = [member('a', 'v1'), member('b', 'v2')]
  const idx = index(ms)
  const route = resolveRoute(undefined, { stable: 'v1', strict: false }, null)
  t.equal(idx.select('v2', route).name, 'b')
  t.equal(idx.select('v3', route).name, 'a', 'empty lane falls back to stable')
  t.throws(() => idx.select('v3', { ...route, strict: true }), { code: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE' })
  t.throws(() => index([]).select(undefined, route), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE' })
  t.equal(resolveRoute(undefined, { stable: 'v1', strict: false }, route), route, 'an unchanged route is the same object')
  t.not(resolveRoute({ stable: 'v2' }, { stable: 'v1', strict: false }, route), route)
})

t.test('outlier detector ejects after N failures, caps the share, readmits', async (t) => {
  const ms = [member('a', 'v1'), member('b', 'v1'), member('c', 'v1'), member('d', 'v1')]
  let idx = index(ms)
  const events: string[] = []
  const det = new OutlierDetector<M>(
    { consecutiveFailures: 2, baseEjectionMs: 100, maxEjectionMs: 100, maxEjectionPercent: 50, count5xx: false },
    { members: () => ms, has: (m) => ms.includes(m), changed: () => (idx = index(ms)), onEjection: (m, e) => events.push(`${e ? 'out' : 'in'}:${m.name}`) }
  )
  t.teardown(() => det.close())
  for (const m of ms) {
    det.recordFailure(m)
    det.recordFailure(m)
  }
  t.same(events, ['out:a', 'out:b'], 'at most half of the service is ejected')
  t.equal(idx.available, 2)
  t.throws(() => index(ms.slice(0, 2)).select(undefined, { stable: 'v1', strict: false, weights: undefined }), { code: 'FLOWTAG_OUTBOUND_ALL_EJECTED' })
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.same(events, ['out:a', 'out:b', 'in:a', 'in:b'])
  t.equal(idx.available, 4)
})
