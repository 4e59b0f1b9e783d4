import t from 'tap'
import { BAGGAGE_KEY, laneBaggageMember, readFlowHeaders, FLOW_TAG_HEADER, writeFlowHeaders, runWithFlow, type FlowContext } from '../src/index.ts'
import { parseBaggage } from '../src/internals.ts'

t.test('writeFlowHeaders writes x-flow-tag and a baggage entry from the current flow', async (t) => {
  const headers: Record<string, string | string[] | undefined> = {}
  runWithFlow({ tag: 'v2', baggage: { tenant: 'acme co' } }, () => writeFlowHeaders(headers))
  t.same(headers, { [FLOW_TAG_HEADER]: 'v2', baggage: 'flowtag.lane=v2,tenant=acme%20co' })
  const none: Record<string, string> = {}
  writeFlowHeaders(none)
  t.same(none, {}, 'outside a flow: nothing')
  writeFlowHeaders(none, { baggage: {} })
  t.same(none, {}, 'a flow without tag or baggage: nothing')
})

t.test('writeFlowHeaders merges with an existing baggage header and replaces stale entries', async (t) => {
  const headers: Record<string, string | string[] | undefined> = { 'X-Flow-Tag': 'old', Baggage: 'userId=alice;prop=1, flowtag.lane=old,  other=x' }
  writeFlowHeaders(headers, { tag: 'v3', baggage: {} })
  t.same(headers, { [FLOW_TAG_HEADER]: 'v3', baggage: 'userId=alice;prop=1,other=x,flowtag.lane=v3' }, 'other members kept verbatim, one header per name')
  const arr: Record<string, string | string[] | undefined> = { baggage: ['a=1', 'b=2'] }
  writeFlowHeaders(arr, { tag: 'v1', baggage: { b: '3' } })
  t.equal(arr.baggage, 'a=1,flowtag.lane=v1,b=3')
})

t.test('writeFlowHeaders refuses to write an invalid tag or key, and keeps within the W3C size limit', async (t) => {
  const h: Record<string, string | string[] | undefined> = {}
  writeFlowHeaders(h, { tag: 'bad tag', baggage: { 'bad key': 'x', ok: 'y' } })
  t.same(h, { baggage: 'ok=y' })
  const big: Record<string, string | string[] | undefined> = { baggage: Array.from({ length: 170 }, (_, i) => `k${i}=${'v'.repeat(60)}`).join(',') }
  writeFlowHeaders(big, { tag: 'v2', baggage: {} })
  t.ok((big.baggage as string).length <= 8192)
  t.ok((big.baggage as string).endsWith('flowtag.lane=v2'), 'our entry survives, inherited ones are dropped first')
})

t.test('readFlowHeaders reads x-flow-tag, else the baggage entry; invalid ones are ignored', async (t) => {
  t.same(readFlowHeaders({ 'x-flow-tag': 'v2', baggage: 'tenant=acme%20co,flowtag.lane=v9' }), { tag: 'v2', decision: { tag: 'v2', reason: 'incoming tag' }, baggage: { tenant: 'acme co' } })
  t.equal(readFlowHeaders({ baggage: `${BAGGAGE_KEY}=v9` })?.tag, 'v9')
  t.equal(readFlowHeaders({ 'X-Flow-Tag': 'v4' })?.tag, 'v4', 'hand-built carriers with other casing')
  t.equal(readFlowHeaders({ 'x-flow-tag': 'no good', baggage: 'flowtag.lane=v5' })?.tag, 'v5')
  t.equal(readFlowHeaders({ 'x-flow-tag': ['v1', 'v2'] }), undefined, 'repeated header is ambiguous')
  t.equal(readFlowHeaders({}), undefined)
  t.equal(readFlowHeaders({ baggage: 'flowtag.lane=%ZZ' }), undefined)
})

t.test('round trip through writeFlowHeaders and readFlowHeaders', async (t) => {
  const flow: FlowContext = { tag: 'canary.v2-1', baggage: { 'user-id': 'a,b;c=d', x: 'é' } }
  const headers: Record<string, string | string[] | undefined> = {}
  writeFlowHeaders(headers, flow)
  const back = readFlowHeaders(headers)!
  t.equal(back.tag, flow.tag)
  t.same(back.baggage, flow.baggage)
})

t.test('parseBaggage skips malformed members and applies limits', async (t) => {
  t.same(parseBaggage('a=1,=2,b,c d=3, e = 4 ;p').map((e) => [e.key, e.value]), [['a', '1'], ['e', '4']])
  t.same(parseBaggage('x'.repeat(9000)), [])
  t.equal(parseBaggage(Array.from({ length: 300 }, (_, i) => `k${i}=1`).join(',')).length, 180)
  t.same(parseBaggage(undefined), [])
})

t.test('laneBaggageMember: the lane\'s baggage member for a valid tag, the same string each time; nothing for an invalid one', async (t) => {
  t.equal(laneBaggageMember('v2'), `${BAGGAGE_KEY}=v2`)
  t.equal(laneBaggageMember('v2'), laneBaggageMember('v2'))
  for (const bad of ['bad tag', '', 'x'.repeat(65), undefined, 42, ['v2']]) t.equal(laneBaggageMember(bad), undefined, JSON.stringify(bad))
  // The cache is bounded: many distinct lanes still get their own member.
  for (let i = 0; i < 600; i++) t.equal(laneBaggageMember(`lane-${i}`), `${BAGGAGE_KEY}=lane-${i}`)
})
