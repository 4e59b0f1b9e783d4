import t from 'tap'
import { createRuleStore, errorCodes, MAX_DOCUMENT_BYTES, parseRuleSet, staticSource, type RulesError } from '../src/index.ts'
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

t.test('size: a RuleSet as large as Nacos stores (10 MiB) is judged on its content; one byte more is refused', async (t) => {
  // JSON whitespace pads the document, so only its size differs.
  const base = JSON.stringify({ ...good, version: 3 })
  const padded = (bytes: number) => base + ' '.repeat(bytes - base.length)
  const five = padded(5_000_000)
  t.equal(parseRuleSet(five).version, 3, 'a 5 MB RuleSet (over grpc-js\'s 4 MiB default) is taken')
  t.equal(parseRuleSet(padded(MAX_DOCUMENT_BYTES)).version, 3, 'at the limit (10 MiB): taken')
  t.throws(() => parseRuleSet(padded(MAX_DOCUMENT_BYTES + 1)), { code: errorCodes.INVALID, message: /10485761 bytes, larger than 10485760/ }, 'one byte over: refused, coded')
  // UTF-8 bytes count, not UTF-16 units: 4 million 3-byte characters are 12 MB in 4 M units.
  const wide = base.slice(0, -1) + ',"x":"' + '\u4e2d'.repeat(4_000_000) + '"}'
  t.ok(wide.length < MAX_DOCUMENT_BYTES, 'fewer UTF-16 units than the limit')
  t.throws(() => parseRuleSet(wide), { code: errorCodes.INVALID, message: /larger than/ }, 'but more bytes: refused')
})

t.test('a mistyped key names the key most likely meant and the valid keys at its place', async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a document bent on purpose
  type Doc = Record<string, any>
  const typo = (mutate: (d: Doc) => void): Error => {
    const d = structuredClone(good) as Doc
    mutate(d)
    try {
      parseRuleSet(JSON.stringify(d))
    } catch (err) {
      return err as Error
    }
    throw new Error('accepted')
  }
  const inService = typo((d) => { d.services['order-service'].stabel = d.services['order-service'].stable; delete d.services['order-service'].stable }) as RulesError
  t.match(inService.issues[0], { path: 'services.order-service.stabel', message: /^unknown key \(did you mean "stable"\?\); valid keys: .*stable/ })
  const atRoot = typo((d) => { d.defualt = d.default; delete d.default }) as RulesError
  t.match(atRoot.issues[0], { path: 'defualt', message: /did you mean "default"\?/ })
  t.match(atRoot.message, /defualt: unknown key \(did you mean "default"\?\)/, 'in the message a publisher sees')
  const inRule = typo((d) => { d.rules[0].whn = d.rules[0].when; delete d.rules[0].when }) as RulesError
  t.match(inRule.issues[0], { path: 'rules.0.whn', message: /did you mean "when"\?/ })
  const far = typo((d) => { d.services['order-service'].zzzzzz = 1 }) as RulesError
  t.match(far.issues[0], { path: 'services.order-service.zzzzzz', message: /^unknown key; valid keys: / }, 'no guess when nothing is close')
})
