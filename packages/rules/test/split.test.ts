import t from 'tap'
import fc from 'fast-check'
import { evaluate, validateRuleSet } from '../src/index.ts'
import { bucketOf } from '../src/internals.ts'

// Fixed seeds: the ±1 point bound is statistical (binomial sd at 50% over 10k keys is 0.5
// points), so the property is checked on a reproducible sample rather than a fresh one per run.
t.test('weighted split lands within ±1 point of the weight over 10k keys', async (t) => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 100 }),
    fc.string({ minLength: 1, maxLength: 12 }),
    fc.string({ minLength: 0, maxLength: 8 }),
    (weight, salt, prefix) => {
      const rs = validateRuleSet({ version: 1, user: { header: 'x-user' }, rules: [{ name: 'c', split: { salt, weights: { canary: weight } } }], default: 'stable' })
      let inCanary = 0
      for (let i = 0; i < 10000; i++) if (evaluate(rs, { headers: { 'x-user': `${prefix}${i}` } }).tag === 'canary') inCanary++
      const share = inCanary / 100
      if (Math.abs(share - weight) > 1) throw new Error(`weight ${weight}% gave ${share}%`)
    }), { seed: 20261125, numRuns: 40 })
  t.pass('40 weights x 10k keys within one point')
})

t.test('ramping up never moves a user out of the canary', async (t) => {
  fc.assert(fc.property(
    fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 200 }),
    fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }),
    (users, a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a]
      const doc = (w: number) => validateRuleSet({ version: 1, user: { cookie: 'uid' }, rules: [{ name: 'canary', split: { weights: { v2: w } } }], default: 'v1' })
      const low = doc(lo)
      const high = doc(hi)
      for (const u of users) {
        const f = { headers: { cookie: `uid=${u.replace(/[;=\s"]/g, 'x')}` } }
        if (evaluate(low, f).tag === 'v2' && evaluate(high, f).tag !== 'v2') throw new Error(`user ${u} left the canary going ${lo}% -> ${hi}%`)
      }
    }), { numRuns: 300 })
  t.pass('monotonic')
})

t.test('buckets are stable and in range', async (t) => {
  t.equal(bucketOf('alice', 'canary'), bucketOf('alice', 'canary'))
  fc.assert(fc.property(fc.string(), fc.string(), (k, s) => {
    const b = bucketOf(k, s)
    return Number.isInteger(b) && b >= 0 && b < 10000
  }))
  t.not(bucketOf('alice', 'a'), bucketOf('alice', 'b'), 'salt reshuffles')
})
