import t from 'tap'
import { request } from 'undici'
import { flowTag } from '../src/express.ts'
import { currentFlow, errorCodes, signTag } from '../src/index.ts'
import { express, listen } from './fixtures/express-app.ts'

const rules = { version: 1, rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' }], default: 'v1' }
const key = { id: 'k1', secret: 'a-long-enough-secret-1' }

async function get (origin: string, headers: Record<string, string> = {}, path = '/flow') {
  const res = await request(`${origin}${path}`, { headers })
  return { status: res.statusCode, body: await res.body.json() as { flow: { tag?: string, decision?: { reason: string }, baggage: Record<string, string> }, als: unknown } }
}

t.test('edge mode, trust policies and bad tags: same semantics as the Fastify plugin', async (t) => {
  const debug: unknown[] = []
  const logger = { debug: (o: object) => debug.push(o), warn: () => {} }
  const app = express()
  const edge = flowTag({ mode: 'edge', rules, trust: { signed: { keys: [key] } }, logger })
  app.use(edge)
  app.get('/flow', (req, res) => { res.json({ flow: req.flow, als: currentFlow() ?? null }) })
  const server = await listen(app)
  t.teardown(server.close)

  const a = await get(server.origin, { 'x-tester': 'yes' })
  t.same(a.body.flow, { tag: 'v2', decision: { tag: 'v2', rule: 'testers', reason: 'rule "testers" matched' }, ruleVersion: 1, baggage: {} })
  t.same(a.body.als, a.body.flow)
  t.equal((await get(server.origin, { 'x-flow-tag': 'v9' })).body.flow.tag, 'v1', 'plain tag ignored at the edge')
  const token = signTag('qa', 60, key)
  t.equal((await get(server.origin, { cookie: `flowtag=${token}` })).body.flow.tag, 'qa', 'signed cookie')
  t.equal((await get(server.origin, {}, `/flow?flowtag=${token}`)).body.flow.tag, 'qa', 'signed link')
  const bad = await get(server.origin, { 'x-flow-tag': 'x~1~k1~' + 'A'.repeat(43) })
  t.equal(bad.status, 200)
  t.equal(bad.body.flow.tag, 'v1')
  t.same(edge.tagger.stats, { signed: 2, trusted: 0, evaluated: 3, untagged: 0, dropped: 1, ignored: 1, shadowed: 0, mirrored: 0, shadows: 0 })
  t.notOk(JSON.stringify(debug).includes('AAAA'), 'refused value not logged')
  t.ok(debug.length === 2)
})

t.test('service mode: trusts and carries the incoming tag and baggage; drops malformed', async (t) => {
  const app = express()
  app.use(flowTag({ mode: 'service' }))
  app.get('/flow', (req, res) => { res.json({ flow: req.flow, als: currentFlow() ?? null }) })
  const server = await listen(app)
  t.teardown(server.close)
  t.same((await get(server.origin, { 'x-flow-tag': 'v3', baggage: 'k=v' })).body.flow, { tag: 'v3', decision: { tag: 'v3', reason: 'trusted incoming tag' }, baggage: { k: 'v' } })
  const bad = await get(server.origin, { 'x-flow-tag': '<b>x</b>' })
  t.equal(bad.status, 200)
  t.same(bad.body.flow, { baggage: {} })
})

t.test('options are validated with a coded error', async (t) => {
  t.throws(() => flowTag({} as never), { code: errorCodes.BAD_OPTION, message: /mode/ })
  t.throws(() => flowTag({ mode: 'edge' }), { code: errorCodes.BAD_OPTION, message: /rules/ })
  t.throws(() => flowTag({ mode: 'service', trust: { cidrs: ['1.2.3.4/40'] } }), { code: errorCodes.BAD_OPTION, message: /cidrs/ })
})
