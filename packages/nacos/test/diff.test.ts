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

t.test('ephemeral, instanceId and serviceName count as changes too', async (t) => {
  const base = inst(1, { version: 'v1' })
  t.equal(diffInstances('svc', [base], [inst(1, { version: 'v1' }, { ephemeral: false })]).changed.length, 1, 'ephemeral')
  t.equal(diffInstances('svc', [base], [inst(1, { version: 'v1' }, { instanceId: 'other' })]).changed.length, 1, 'instanceId')
  t.equal(diffInstances('svc', [base], [inst(1, { version: 'v1' }, { serviceName: 'other' })]).changed.length, 1, 'serviceName')
})

t.test('the new list keeps the held objects of unchanged instances', async (t) => {
  const before = [inst(1, { v: '1' }), inst(2), inst(3)]
  const after = [inst(1, { v: '1' }), inst(2, { v: '2' }), inst(3)]
  const d = diffInstances('svc', before, after)
  t.equal(d.instances, after, 'the new list itself')
  t.equal(d.instances[0], before[0], 'unchanged: the held object')
  t.equal(d.instances[2], before[2], 'unchanged: the held object')
  t.not(d.instances[1], before[1], 'changed: the new object')
  t.equal(d.changed[0], d.instances[1])
})

// Against a plain reference (sets by key, deep equality), over random lists in random orders:
// lists that line up, that line up for a while, that are shuffled.
t.test('agrees with a plain reference on random lists', async (t) => {
  let seed = 7
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296)
  const key = (i: Instance) => `${i.ip}#${i.port}#${i.clusterName}`
  const make = (port: number) => inst(port % 13, random() < 0.3 ? { v: String(Math.floor(random() * 3)) } : {}, { clusterName: port >= 13 ? 'B' : 'DEFAULT', weight: random() < 0.2 ? 2 : 1 })
  for (let round = 0; round < 300; round++) {
    const ports = [...new Set(Array.from({ length: Math.floor(random() * 20) }, () => Math.floor(random() * 26)))]
    const before = ports.map(make)
    const after: Instance[] = []
    for (const i of before) {
      const r = random()
      if (r < 0.15) continue
      after.push(r < 0.4 ? make(i.port + (i.clusterName === 'B' ? 13 : 0)) : { ...i, metadata: { ...i.metadata } })
    }
    for (let j = 0; j < 3; j++) {
      const p = Math.floor(random() * 26)
      const probe = make(p)
      if (!after.some((i) => key(i) === key(probe))) after.push(probe)
    }
    if (random() < 0.3) after.sort(() => random() - 0.5)
    else if (random() < 0.3) after.reverse()
    const copy = after.map((i) => ({ ...i, metadata: { ...i.metadata } }))
    const held = new Map(before.map((i) => [key(i), i]))
    const listed = new Set(copy.map(key))
    const expected = {
      added: copy.filter((i) => !held.has(key(i))).map(key).sort(),
      removed: before.filter((i) => !listed.has(key(i))).map(key).sort(),
      changed: copy.filter((i) => held.has(key(i)) && JSON.stringify(held.get(key(i))) !== JSON.stringify(i)).map(key).sort()
    }
    const d = diffInstances('svc', before, after)
    const got = { added: d.added.map(key).sort(), removed: d.removed.map(key).sort(), changed: d.changed.map(key).sort() }
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      t.same(got, expected, `round ${round}`)
      return
    }
    // The new list lists the same instances, field for field, in the same order.
    t.equal(JSON.stringify(d.instances), JSON.stringify(copy))
  }
})
