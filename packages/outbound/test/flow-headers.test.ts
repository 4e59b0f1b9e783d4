import t from 'tap'
import { writeFlowHeaders } from '@flowtag/context'
import { outboundHeaders } from '../src/flow-headers.ts'

const flow = { tag: 'v2', baggage: { user: 'ab', k: 'v' } }
const bag = 'flowtag.lane=v2,user=ab,k=v'

t.test('object headers: the flow decides the lane, Host defaults to the service', async (t) => {
  const input = { 'X-Flow-Tag': 'evil', Baggage: 'x=1,flowtag.lane=evil', accept: 'json', 'set-cookie': ['a', 'b'], skip: undefined }
  const out = outboundHeaders(input, flow, 'user-service')
  t.same(out, { accept: 'json', 'set-cookie': ['a', 'b'], host: 'user-service', 'x-flow-tag': 'v2', baggage: `x=1,${bag}` })
  t.same(input['X-Flow-Tag'], 'evil', 'the caller object is not mutated')
})

t.test('a flow without a tag drops a copied lane but keeps other baggage', async (t) => {
  t.same(outboundHeaders({ 'x-flow-tag': 'evil', baggage: 'flowtag.lane=evil,a=1' }, { baggage: {} }, 'svc'), { host: 'svc', baggage: 'a=1' })
  t.same(outboundHeaders({ baggage: 'flowtag.lane=evil' }, { baggage: {} }, 'svc'), { host: 'svc' })
})

t.test('without a flow the caller headers pass through', async (t) => {
  t.same(outboundHeaders({ 'x-flow-tag': 'mine', Host: 'custom' }, undefined, 'svc'), { 'x-flow-tag': 'mine', Host: 'custom' })
  t.same(outboundHeaders(null, undefined, 'svc'), { host: 'svc' })
})

t.test('flat arrays and iterables of pairs', async (t) => {
  t.same(outboundHeaders(['a', '1', 'A', '2', 'x-flow-tag', 'old'], flow, 'svc'), { a: '1', A: '2', host: 'svc', 'x-flow-tag': 'v2', baggage: bag })
  t.same(outboundHeaders(['a', '1', 'a', '2'], undefined, 'svc'), { a: ['1', '2'], host: 'svc' })
  t.same(outboundHeaders(new Map([['b', '2'], ['host', 'h']]), { tag: 'v3', baggage: {} }, 'svc'), { b: '2', host: 'h', 'x-flow-tag': 'v3', baggage: 'flowtag.lane=v3' })
})

t.test('the cached common case writes exactly what writeFlowHeaders() writes', async (t) => {
  const cases: Array<[Record<string, string | undefined>, { tag?: string; baggage: Record<string, string> }]> = [
    [{ 'X-Flow-Tag': 'old', accept: 'json', connection: undefined }, { tag: 'v2', baggage: {} }],
    [{ accept: 'json' }, { tag: 'v2', baggage: {} }],
    [{ accept: 'json' }, { tag: 'not a tag!', baggage: {} }],
    [{ accept: 'json' }, { baggage: {} }],
    [{ BAGGAGE: 'a=1' }, { tag: 'v2', baggage: {} }],
    [{ accept: 'json' }, { tag: 'v2', baggage: { user: 'ab' } }]
  ]
  for (const [headers, f] of cases) {
    const reference: Record<string, string | string[] | undefined> = { ...headers }
    for (const k of Object.keys(reference)) if (reference[k] === undefined || k.toLowerCase() === 'x-flow-tag') delete reference[k]
    if (reference.BAGGAGE !== undefined) {
      reference.baggage = reference.BAGGAGE
      delete reference.BAGGAGE
    }
    reference.host = 'svc'
    writeFlowHeaders(reference, f)
    // Twice: the first call fills the per-tag cache, the second reads it.
    t.same(outboundHeaders(headers, f, 'svc'), reference, JSON.stringify([headers, f]))
    t.same(Object.keys(outboundHeaders(headers, f, 'svc')), Object.keys(reference), 'same header order')
  }
})

t.test('signTag: x-flow-tag carries the signed form of the flow lane, a copied tag never', async (t) => {
  const sign = (lane: string) => `${lane}~signed`
  t.same(outboundHeaders({ 'x-flow-tag': 'evil' }, { tag: 'v2', baggage: {} }, 'svc', sign), { host: 'svc', 'x-flow-tag': 'v2~signed', baggage: 'flowtag.lane=v2' })
  t.same(outboundHeaders({ baggage: 'a=1' }, flow, 'svc', sign), { host: 'svc', baggage: `a=1,${bag}`, 'x-flow-tag': 'v2~signed' })
  t.same(outboundHeaders({ 'x-flow-tag': 'evil' }, { baggage: {} }, 'svc', sign), { host: 'svc' }, 'no lane: nothing signed, nothing copied')
  t.same(outboundHeaders({}, { tag: 'not a tag!', baggage: {} }, 'svc', sign), { host: 'svc' }, 'an invalid lane is never signed')
})

t.test('hop-by-hop request headers are not copied, in any case and any header shape', async (t) => {
  const input = {
    Connection: 'close, X-A, Host',
    'X-A': '1',
    Host: 'named-away',
    'Keep-Alive': 'timeout=5',
    'Proxy-Connection': 'keep-alive',
    'Transfer-Encoding': 'chunked',
    Upgrade: 'h2c',
    TE: 'trailers;q=1, deflate',
    Expect: '100-Continue',
    b: '2'
  }
  t.same(outboundHeaders(input, undefined, 'svc'), { TE: 'trailers', b: '2', host: 'svc' }, 'what Connection names goes too; Host falls back to the service')
  t.same(outboundHeaders({ te: 'deflate', expect: 'something-else' }, undefined, 'svc'), { expect: 'something-else', host: 'svc' }, 'TE without trailers goes; another expectation stays, for undici to refuse')
  t.same(outboundHeaders(['connection', 'x-a', 'connection', 'x-b', 'x-a', '1', 'x-b', '2', 'x-c', '3'], undefined, 'svc'), { 'x-c': '3', host: 'svc' }, 'flat arrays, two Connection headers')
  t.same(outboundHeaders(new Map<string, string | string[]>([['connection', ['x-a', 'x-b']], ['x-a', '1'], ['x-b', '2'], ['keep-alive', '1']]), flow, 'svc'), { host: 'svc', 'x-flow-tag': 'v2', baggage: bag }, 'pairs, a Connection value list, with a flow')
})
