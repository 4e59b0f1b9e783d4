import t from 'tap'
import { selectHealthy, selectOne, type Instance } from '../src/index.ts'

const inst = (port: number, weight: number, healthy = true, enabled = true): Instance => ({
  instanceId: String(port),
  ip: '127.0.0.1',
  port,
  weight,
  healthy,
  enabled,
  ephemeral: true,
  clusterName: 'DEFAULT',
  serviceName: 's',
  metadata: {}
})

t.test('selectHealthy keeps healthy, enabled, weighted instances', async (t) => {
  const list = [inst(1, 1), inst(2, 1, false), inst(3, 1, true, false), inst(4, 0), inst(5, 2)]
  t.same(selectHealthy(list).map((i) => i.port), [1, 5])
})

t.test('selectOne picks in proportion to weight', async (t) => {
  const list = [inst(1, 1), inst(2, 3), inst(3, 0)]
  t.equal(selectOne([]), undefined)
  t.equal(selectOne([inst(9, 0)]), undefined)
  t.equal(selectOne(list, () => 0)?.port, 1)
  t.equal(selectOne(list, () => 0.24)?.port, 1)
  t.equal(selectOne(list, () => 0.26)?.port, 2)
  t.equal(selectOne(list, () => 0.9999)?.port, 2)
  // A deterministic sweep over [0,1) gives the exact 1:3 split.
  const counts = new Map<number, number>()
  for (let k = 0; k < 400; k++) {
    const port = selectOne(list, () => k / 400)?.port as number
    counts.set(port, (counts.get(port) ?? 0) + 1)
  }
  t.same(Object.fromEntries(counts), { 1: 100, 2: 300 })
})
