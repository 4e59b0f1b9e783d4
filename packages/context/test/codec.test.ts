import t from 'tap'
import fc from 'fast-check'
import { parseTag } from '../src/index.ts'
import { TAG_PATTERN } from '../src/internals.ts'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-'
const inGrammar = (s: string) => s.length >= 1 && s.length <= 64 && [...s].every((c) => ALPHABET.includes(c))

t.test('accepts every string of the grammar, unchanged', async (t) => {
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 1, maxLength: 64 }), (s) => parseTag(s) === s), { numRuns: 2000 })
  t.equal(parseTag('v1'), 'v1')
  t.equal(parseTag('x'.repeat(64)), 'x'.repeat(64))
})

t.test('rejects every string outside the grammar', async (t) => {
  // arbitrary unicode (including line breaks, NUL, surrogates), near-misses with one bad
  // character, and over-long strings of good characters
  const anyString = fc.string({ unit: 'binary', maxLength: 100 })
  const nearMiss = fc.tuple(
    fc.string({ unit: fc.constantFrom(...ALPHABET), maxLength: 63 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => !ALPHABET.includes(c)),
    fc.nat(63)
  ).map(([s, c, at]) => s.slice(0, at) + c + s.slice(at))
  const tooLong = fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 65, maxLength: 300 })
  fc.assert(fc.property(fc.oneof(anyString, nearMiss, tooLong), (s) => {
    return inGrammar(s) ? parseTag(s) === s : parseTag(s) === undefined
  }), { numRuns: 5000 })
  for (const s of ['', ' v1', 'v1 ', 'v1\n', 'v1\r\nx-evil: 1', 'v 1', 'v1;', 'v1,v2', 'ü', 'v1\u0000', '\u{1F600}']) t.equal(parseTag(s), undefined, JSON.stringify(s))
  t.notOk(TAG_PATTERN.test('a\nb'))
})

t.test('rejects every non-string', async (t) => {
  fc.assert(fc.property(fc.anything().filter((v) => typeof v !== 'string'), (v) => parseTag(v) === undefined))
  t.equal(parseTag(['v1']), undefined, 'repeated header (array) is not a tag')
  t.equal(parseTag(new String('v1')), undefined)
})
