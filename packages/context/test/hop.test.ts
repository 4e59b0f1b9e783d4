import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import { fastifyFlowTag } from '../src/fastify.ts'
import { currentFlow, writeFlowHeaders, signTag } from '../src/index.ts'

const key = { id: 'k1', secret: 'hop-test-secret-0001' }

t.test('edge -> service over real HTTP: the lane and baggage travel with writeFlowHeaders(), one hop further', async (t) => {
  const service = Fastify()
  t.teardown(() => service.close())
  await service.register(fastifyFlowTag, { mode: 'service', trust: { cidrs: ['127.0.0.0/8', '::1'] } })
  service.get('/who', async (req) => ({ tag: currentFlow()?.tag ?? null, baggage: req.flow.baggage, raw: req.headers.baggage }))
  await service.listen({ port: 0, host: '127.0.0.1' })
  const serviceUrl = `http://127.0.0.1:${(service.server.address() as { port: number }).port}`

  const edge = Fastify()
  t.teardown(() => edge.close())
  await edge.register(fastifyFlowTag, {
    mode: 'edge',
    trust: { signed: { keys: [key] } },
    rules: { version: 1, rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' }], default: 'v1' }
  })
  edge.get('/', async (req) => {
    req.flow.baggage['request-id'] = 'r-1'
    await new Promise((resolve) => setTimeout(resolve, 2))
    const headers: Record<string, string | string[] | undefined> = { baggage: 'vendor=x' }
    writeFlowHeaders(headers)
    const res = await request(`${serviceUrl}/who`, { headers: headers as Record<string, string> })
    return res.body.json()
  })
  await edge.listen({ port: 0, host: '127.0.0.1' })
  const edgeUrl = `http://127.0.0.1:${(edge.server.address() as { port: number }).port}`

  const call = async (headers: Record<string, string>) => (await request(edgeUrl, { headers })).body.json()
  t.same(await call({ 'x-tester': 'yes' }), { tag: 'v2', baggage: { vendor: 'x', 'request-id': 'r-1' }, raw: 'vendor=x,flowtag.lane=v2,request-id=r-1' })
  t.match(await call({}), { tag: 'v1' })
  t.match(await call({ 'x-flow-tag': 'v9' }), { tag: 'v1' }, 'a client cannot pick its lane at the edge')
  t.match(await call({ cookie: `flowtag=${signTag('qa', 60, key)}` }), { tag: 'qa' }, 'unless it holds a signed tag')
})
