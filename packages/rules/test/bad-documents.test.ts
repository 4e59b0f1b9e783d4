import t from 'tap'
import { createRuleStore, errorCodes, staticSource, type RulesError } from '../src/index.ts'
import { badDocuments, good } from './fixtures/bad-documents.ts'

t.test(`each of ${badDocuments.length} bad documents is refused with its path; the last good set stays`, async (t) => {
  t.ok(badDocuments.length >= 50, 'at least 50 documents')
  const source = staticSource(good)
  const errors: RulesError[] = []
  const store = createRuleStore({ source, onError: (e) => errors.push(e) })
  t.teardown(() => store.close())
  await store.ready
  const inForce = store.current
  t.equal(store.version, 1)
  const probes = [
    { facts: { headers: { 'x-tester': 'yes' } }, tag: 'v2' },
    { facts: { headers: { 'x-user-id': 'someone' } }, tag: store.evaluate({ headers: { 'x-user-id': 'someone' } })!.tag },
    { facts: { headers: {}, random: () => 0.5 }, tag: 'v1' }
  ]
  for (const [i, bad] of badDocuments.entries()) {
    source.set(bad.raw)
    t.equal(errors.length, i + 1, `${bad.name}: exactly one error`)
    const err = errors[i]!
    t.equal(err.code, errorCodes.INVALID, `${bad.name}: coded`)
    t.ok(err.issues.some((x) => x.path === bad.path), `${bad.name}: names ${bad.path} (got ${err.issues.map((x) => x.path).join(', ')})`)
    t.match(err.message, /rule set rejected.*keeping version 1/, `${bad.name}: says what stays`)
    t.equal(store.current, inForce, `${bad.name}: last good set still in force`)
    for (const p of probes) t.equal(store.evaluate(p.facts)!.tag, p.tag, `${bad.name}: no request misrouted`)
  }
  t.equal(store.stats.rejected, badDocuments.length, 'every refusal counted')
  source.set(badDocuments[5]!.raw)
  source.set(badDocuments[5]!.raw)
  t.equal(errors.length, badDocuments.length + 1, 'a bad document re-delivered back to back is reported once')
  source.set({ ...good, version: 2, default: 'v2' })
  t.equal(store.version, 2, 'a good document after the bad ones is taken')
  t.equal(store.stats.accepted, 2)
})
