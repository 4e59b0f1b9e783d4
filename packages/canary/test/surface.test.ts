// The public surface: names used only by tests and flowtag's own apps live at
// `@flowtag/canary/internals`; the root keeps them for one minor version as deprecated aliases
// of the very same values.
import t from 'tap'
import * as root from '../src/index.ts'
import * as internals from '../src/internals.ts'

const moved = [
  'readRules', 'publishRules', 'wilsonLower', 'candidateWeight', 'CANARY_RULE', 'laneWindow', 'figuresFromText',
  'stateDataId', 'commandDataId', 'TERMINAL', 'quantile', 'summarize'
] as const

t.test('the internals subpath exports the moved names', async (t) => {
  t.same(Object.keys(internals).sort(), [...moved].sort())
})

t.test('the root still exports each moved name, as the same value (deprecated alias)', async (t) => {
  for (const name of moved) t.equal(root[name], internals[name], name)
})
