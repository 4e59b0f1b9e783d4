import t from 'tap'
import {
  checkOutboundFlow, createFlowTagger, errorCodes, resetTagLossCounts, runUntagged, runWithFlow, setTagLossMode, tagLossCounts, tagLossMode, currentFlow
} from '../src/index.ts'

t.test('nothing is checked until the process tags requests', async (t) => {
  t.equal(tagLossMode(), 'off')
  t.equal(checkOutboundFlow(undefined, undefined), undefined)
  t.same(tagLossCounts(), {})
  createFlowTagger({ mode: 'service' })
  t.equal(tagLossMode(), 'count', 'a tagger arms count mode')
})

t.test('missing and mismatch are counted at the call site; runUntagged is not a loss', async (t) => {
  resetTagLossCounts()
  checkOutboundFlow(undefined, undefined)
  runWithFlow({ tag: 'v2', baggage: {} }, () => { checkOutboundFlow(currentFlow(), 'v1') })
  runWithFlow({ tag: 'v2', baggage: {} }, () => { checkOutboundFlow(currentFlow(), 'v2') })
  runUntagged(() => { checkOutboundFlow(currentFlow(), undefined) })
  const keys = Object.keys(tagLossCounts())
  t.equal(keys.length, 2)
  t.match(keys[0], /^missing test\/tag-loss\.test\.ts:\d+$/)
  t.match(keys[1], /^mismatch test\/tag-loss\.test\.ts:\d+$/)
})

t.test('strict mode hands back the coded error; off checks nothing', async (t) => {
  setTagLossMode('strict')
  const err = checkOutboundFlow(undefined, undefined)
  t.equal(err?.code, errorCodes.TAG_LOST)
  t.match(err?.message, /at test\/tag-loss\.test\.ts:\d+ was made outside any request's async context/)
  setTagLossMode('off')
  resetTagLossCounts()
  t.equal(checkOutboundFlow(undefined, undefined), undefined)
  t.same(tagLossCounts(), {})
})

t.test('the tagLoss option sets the mode', async (t) => {
  createFlowTagger({ mode: 'service', tagLoss: 'strict' })
  t.equal(tagLossMode(), 'strict')
  t.throws(() => createFlowTagger({ mode: 'service', tagLoss: 'loud' as never }), { code: errorCodes.BAD_OPTION })
})
