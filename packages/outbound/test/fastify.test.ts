import t from 'tap'
import Fastify from 'fastify'
import { interceptors, request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import fastifyOutbound from '../src/fastify.ts'
import { FlowTagDispatcher } from '../src/index.ts'
import { startInstance } from './fixtures/instances.ts'
import { waitFor } from '@flowtag/test-kit'

t.test('fastify.outbound calls services in the lane of the request and closes on onClose', async (t) => {
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const discovery = new StaticDiscovery({
    'user-service': [
      { ip: '127.0.0.1', port: v1.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: v2.port, metadata: { version: 'v2' } }
    ]
  })
  const app = Fastify()
  t.teardown(async () => {
    await app.close()
  })
  await app.register(fastifyOutbound, { discovery, stableLane: 'v1', interceptors: [interceptors.responseError()] })
  app.addHook('onRequest', (req, _reply, done) => runWithFlow({ tag: req.headers['x-flow-tag'] as string | undefined, baggage: {} }, done))
  app.get('/orders/:id', async (req) => {
    const { body } = await request(`http://user-service/users/${(req.params as { id: string }).id}`, { dispatcher: app.outbound })
    return { user: await body.json() }
  })
  t.ok(app.hasDecorator('outbound'))
  t.ok(app.outbound instanceof FlowTagDispatcher)

  const tagged = await app.inject({ url: '/orders/1', headers: { 'x-flow-tag': 'v2' } })
  t.match(tagged.json(), { user: { id: 'two', tag: 'v2' } })
  const plain = await app.inject({ url: '/orders/2' })
  t.match(plain.json(), { user: { id: 'one' } })
  t.equal(app.outbound.snapshot('user-service')?.pools, 2)

  await app.close()
  await waitFor('pools closed by onClose', () => v1.open === 0 && v2.open === 0, 10_000)
  await t.rejects(request('http://user-service/', { dispatcher: app.outbound }), { code: 'FLOWTAG_OUTBOUND_CLOSED' })
})

t.test('bad options fail registration with a coded error', async (t) => {
  const app = Fastify()
  t.teardown(async () => {
    await app.close()
  })
  app.register(fastifyOutbound, { discovery: new StaticDiscovery(), maxRetries: -2 })
  await t.rejects(async () => {
    await app.ready()
  }, { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /maxRetries/ })
  const app2 = Fastify()
  t.teardown(async () => {
    await app2.close()
  })
  app2.register(fastifyOutbound, { discovery: new StaticDiscovery(), interceptors: ['x' as never] })
  await t.rejects(async () => {
    await app2.ready()
  }, { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /interceptors/ })
})

t.test('plugin metadata', async (t) => {
  const meta = (fastifyOutbound as unknown as Record<symbol, { name: string; fastify: string }>)[Symbol.for('plugin-meta')]
  t.equal(meta?.name, '@flowtag/outbound')
  t.equal(meta?.fastify, '5.x')
})
