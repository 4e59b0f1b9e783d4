// The public surface: plumbing lives at `@flowtag/context/internals`; the root keeps the old
// names for one minor version as deprecated aliases of the very same values.
import t from 'tap'
import * as root from '../src/index.ts'
import * as internals from '../src/internals.ts'

const moved = ['TAG_PATTERN', 'parseBaggage', 'recordFallback', 'mergeFallback', 'fallbackOf', 'MAX_FALLBACK_ENTRIES', 'MAX_FALLBACK_LENGTH'] as const

t.test('the internals subpath exports the plumbing names', async (t) => {
  t.same(Object.keys(internals).sort(), [...moved].sort())
})

t.test('the root still exports each moved name, as the same value (deprecated alias)', async (t) => {
  for (const name of moved) t.equal(root[name], internals[name], name)
})

t.test('the wire constants stay at the root', async (t) => {
  t.equal(root.FALLBACK_HEADER, 'x-flowtag-fallback')
  t.equal(root.FALLBACK_BAGGAGE_KEY, 'flowtag.fallback')
})
