// diffInstances: what a listener is told changed between two lists of one service.
import t from 'tap'
import { diffInstances, type Instance } from '../src/discovery.ts'

const inst = (port: number, metadata: Record<string, string> = {}, more: Partial<Instance> = {}): Instance => ({
  instanceId: `127.0.0.1#${port}`,
  ip: '127.0.0.1',
  port,
  weight: 1,
  healthy: true,
  enabled: true,
  ephemeral: true,
  clusterName: 'DEFAULT',
  serviceName: 'svc',
  metadata,
  ...more
})

t.test('added, removed and changed by identity (ip, port, cluster)', async (t) => {
  const before = [inst(1), inst(2), inst(3, { v: '1' })]
  const after = [inst(2), inst(3, { v: '2' }), inst(4), inst(1, {}, { clusterName: 'OTHER' })]
  const d = diffInstances('svc', before, after)
  t.equal(d.service, 'svc')
  t.equal(d.instances, after, 'the new list itself')
  t.same(d.added.map((i) => `${i.port}/${i.clusterName}`), ['4/DEFAULT', '1/OTHER'], 'another cluster is another instance')
  t.same(d.removed.map((i) => i.port), [1])
  t.same(d.changed.map((i) => i.port), [3])
})

t.test('a change is any of weight, health, enabled, or metadata (a key added, dropped, renamed or revalued)', async (t) => {
  const base = inst(1, { version: 'v1', zone: 'a' })
  const cases: Array<[string, Instance, boolean]> = [
    ['the same', inst(1, { zone: 'a', version: 'v1' }), false],
    ['weight', inst(1, { version: 'v1', zone: 'a' }, { weight: 2 }), true],
    ['healthy', inst(1, { version: 'v1', zone: 'a' }, { healthy: false }), true],
    ['enabled', inst(1, { version: 'v1', zone: 'a' }, { enabled: false }), true],
    ['a value', inst(1, { version: 'v2', zone: 'a' }), true],
    ['a key added', inst(1, { version: 'v1', zone: 'a', round: '1' }), true],
    ['a key dropped', inst(1, { version: 'v1' }), true],
    ['a key renamed, same count', inst(1, { version: 'v1', region: 'a' }), true]
  ]
  for (const [what, after, changed] of cases) t.equal(diffInstances('svc', [base], [after]).changed.length, changed ? 1 : 0, what)
  t.equal(diffInstances('svc', [inst(1, { a: '' })], [inst(1, { b: '' })]).changed.length, 1, 'empty values under other keys')
})
