import t from 'tap'
import { AliasTable } from '../src/alias-table.ts'

t.test('a uniform sweep of u lands on each item in proportion to its weight', async (t) => {
  const weights = [1, 2, 7, 0.5, 9.5]
  const table = new AliasTable(['a', 'b', 'c', 'd', 'e'], weights)
  const steps = 200_000
  const counts = [0, 0, 0, 0, 0]
  for (let s = 0; s < steps; s++) counts[table.pickIndex((s + 0.5) / steps)]!++
  const total = weights.reduce((a, b) => a + b, 0)
  for (let i = 0; i < weights.length; i++) {
    t.ok(Math.abs(counts[i]! / steps - weights[i]! / total) < 0.001, `item ${i}: ${counts[i]! / steps} vs ${weights[i]! / total}`)
  }
})

t.test('random picks follow the weights', async (t) => {
  const table = new AliasTable(['x', 'y'], [3, 1])
  let x = 0
  for (let i = 0; i < 40_000; i++) if (table.pick() === 'x') x++
  t.ok(Math.abs(x / 40_000 - 0.75) < 0.02, `x share ${x / 40_000}`)
})

t.test('a single item is always picked; an empty table is refused', async (t) => {
  const table = new AliasTable(['only'], [5])
  t.equal(table.pick(0), 'only')
  t.equal(table.pick(0.999999), 'only')
  t.equal(table.size, 1)
  t.throws(() => new AliasTable([], []), RangeError)
  t.throws(() => new AliasTable(['a'], [1, 2]), RangeError)
})
