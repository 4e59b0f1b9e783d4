// An edge gateway as configuration: @fastify/http-proxy / @fastify/reply-from with the
// FlowTagDispatcher as their `undici` option, behind the edge tagging plugin. A request the
// rules put in v2 reaches the v2 instance; others reach v1; a forged x-flow-tag moves nothing.
import t from 'tap'
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'
import replyFrom, { type FastifyReplyFromHooks } from '@fastify/reply-from'
import { StaticDiscovery } from '@flowtag/nacos'
import { fastifyFlowTag } from '@flowtag/context/fastify'
import outbound from '../src/fastify.ts'
import { FlowTagDispatcher, OutboundError } from '../src/index.ts'
import { startInstance, type Instance } from './fixtures/instances.ts'

const at = (i: Instance, version: string) => ({ ip: '127.0.0.1', port: i.port, metadata: { version } })
const rules = {
  version: 1,
  rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' }],
  default: 'v1'
}

/** reply-from reports a routing failure as a 500 whose cause is the OutboundError: answer 503. */
const onError: FastifyReplyFromHooks['onError'] = (reply, { error }) => {
  const cause = error.cause
  if (cause instanceof OutboundError) reply.code(cause.statusCode ?? 503).send({ code: cause.code })
  else reply.send(error)
}

t.test('@fastify/http-proxy with undici: app.outbound keeps lanes', async (t) => {
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const discovery = new StaticDiscovery({ 'user-service': [at(v1, 'v1'), at(v2, 'v2')], 'order-service': [] })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyFlowTag, { mode: 'edge', rules })
  await app.register(outbound, { discovery, stableLane: 'v1' })
  await app.register(proxy, { upstream: 'http://user-service', prefix: '/api', undici: app.outbound as never, replyOptions: { onError } })
  await app.register(proxy, { upstream: 'http://order-service', prefix: '/orders', undici: app.outbound as never, replyOptions: { onError } })

  const v2res = await app.inject({ url: '/api/users/1?x=1', headers: { 'x-tester': 'yes' } })
  t.equal(v2res.statusCode, 200)
  t.match(v2res.json(), { id: 'two', tag: 'v2', baggage: /flowtag\.lane=v2/, host: 'user-service', path: '/users/1' })

  const plain = await app.inject({ url: '/api/users/2' })
  t.match(plain.json(), { id: 'one', tag: 'v1', path: '/users/2' })

  // The edge trusts no incoming tag: the forged one is replaced by the decided lane.
  const forged = await app.inject({ url: '/api/users/3', headers: { 'x-flow-tag': 'v2', baggage: 'flowtag.lane=v2,other=1' } })
  t.match(forged.json(), { id: 'one', tag: 'v1' })
  t.notMatch(forged.json().baggage, /flowtag\.lane=v2/)

  const post = await app.inject({ method: 'POST', url: '/api/users', headers: { 'x-tester': 'yes', 'content-type': 'application/json' }, payload: { name: 'ada' } })
  t.match(post.json(), { id: 'two', method: 'POST', body: '{"name":"ada"}' })

  const none = await app.inject({ url: '/orders/1' })
  t.equal(none.statusCode, 503)
  t.same(none.json(), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE' })
})

t.test('@fastify/reply-from with undici: a FlowTagDispatcher', async (t) => {
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const discovery = new StaticDiscovery({ 'user-service': [at(v1, 'v1'), at(v2, 'v2')] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  const app = Fastify()
  t.teardown(async () => {
    await app.close()
    await dispatcher.close()
  })
  await app.register(fastifyFlowTag, { mode: 'edge', rules })
  // reply-from 12 types `undici` with undici 7's types; at run time it needs only request().
  await app.register(replyFrom, { base: 'http://user-service', undici: dispatcher as never })
  app.get('/*', (req, reply) => reply.from(req.url))

  let v2hits = 0
  let v1hits = 0
  for (let i = 0; i < 20; i++) {
    const tester = i % 2 === 0
    const body = (await app.inject({ url: `/users/${i}`, headers: tester ? { 'x-tester': 'yes' } : {} })).json()
    t.equal(body.id, tester ? 'two' : 'one', `request ${i}`)
    if (body.id === 'two') v2hits++
    else v1hits++
  }
  t.same([v1hits, v2hits], [10, 10])
  t.equal(dispatcher.snapshot('user-service')?.pools, 2)
})
