// Nest's RabbitMQ transport in lanes, against a real RabbitMQ and the embedded Nacos: two Nest
// microservices on FlowTagRmqServer (stable v1, and v2) register as consumers with their lane;
// a Nest HTTP service emits and sends through FlowTagClientRmq in each request's lane. Each
// message is handled by the consumer of its lane (stable for a lane with no live consumer), its
// handler sees the lane, what the handler emits keeps it, request-response still answers, and
// a handler that fails has its message retried.
import { NacosClient } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import { Body, Controller, Inject, Module, Post, type INestMicroservice } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ClientsModule, Ctx, EventPattern, MessagePattern, Payload, type ClientProxy, type RmqContext } from '@nestjs/microservices'
import { lastValueFrom } from 'rxjs'
import t from 'tap'
import { FlowTagModule, Lane, LaneContext } from '../src/index.ts'
import { FlowTagClientRmq, FlowTagRmqServer } from '../src/rmq.ts'
import { method, params, startApp } from './fixtures/apps.ts'
import { rabbitUrl, unique } from './fixtures/brokers.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

interface Seen { pattern: string, id: string, by: string, lane: string | null, inProvider: string | null }

function consumerModule (version: string, url: string, queue: string, seen: Seen[], failures: Map<string, number>): new () => object {
  class EventsController {
    readonly out: ClientProxy
    readonly lanes: LaneContext
    constructor (out: ClientProxy, lanes: LaneContext) {
      this.out = out
      this.lanes = lanes
    }

    async order (data: { id: string }, lane: string | undefined, ctx: RmqContext) {
      await new Promise((resolve) => setTimeout(resolve, 1))
      const left = failures.get(data.id) ?? 0
      if (left > 0) {
        failures.set(data.id, left - 1)
        throw new Error(`${data.id} fails this time`)
      }
      seen.push({ pattern: 'order.created', id: data.id, by: version, lane: lane ?? null, inProvider: this.lanes.current ?? null })
      ctx.getChannelRef().ack(ctx.getMessage()) // a handler written for noAck: false keeps working
      await lastValueFrom(this.out.emit('order.audited', { id: data.id }))
    }

    audited (data: { id: string }, lane: string | undefined) {
      seen.push({ pattern: 'order.audited', id: data.id, by: version, lane: lane ?? null, inProvider: this.lanes.current ?? null })
    }

    price (data: { id: string }, lane: string | undefined) {
      return { id: data.id, by: version, lane: lane ?? null }
    }
  }
  Controller()(EventsController)
  Inject('OUT')(EventsController, undefined, 0)
  Inject(LaneContext)(EventsController, undefined, 1)
  method(EventsController, 'order', EventPattern('order.created') as MethodDecorator)
  params(EventsController, 'order', [0, Payload()], [1, Lane()], [2, Ctx()])
  method(EventsController, 'audited', EventPattern('order.audited') as MethodDecorator)
  params(EventsController, 'audited', [0, Payload()], [1, Lane()])
  method(EventsController, 'price', MessagePattern('order.price') as MethodDecorator)
  params(EventsController, 'price', [0, Payload()], [1, Lane()])
  class EventsModule {}
  Module({
    imports: [
      FlowTagModule.forRoot({ service: 'unused', nacos: { serverAddr: '127.0.0.1:1' }, registration: false, cacheDir: false }),
      ClientsModule.register([{ name: 'OUT', customClass: FlowTagClientRmq, options: { urls: [url], queue } }])
    ],
    controllers: [EventsController]
  })(EventsModule)
  return EventsModule
}

t.test('Nest RabbitMQ transport: each message is handled by its lane\'s consumer, in its lane', async (t) => {
  const url = rabbitUrl(t)
  if (url === undefined) return
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false, ...fastClient })
  t.teardown(() => admin.close())
  const queue = unique('nest-orders')
  const seen: Seen[] = []
  const failures = new Map([['d-retried', 2]])
  const servers: FlowTagRmqServer[] = []
  const apps: INestMicroservice[] = []
  t.teardown(async () => { for (const app of apps.reverse()) await app.close() })
  for (const [i, version] of ['v1', 'v2'].entries()) {
    const strategy = new FlowTagRmqServer({
      urls: [url],
      queue,
      prefetchCount: 5,
      flowtag: { service: 'order-events', lane: version, stableLane: 'v1', nacos: { serverAddr: dev.address, ...fastClient }, registration: { port: 9464 + i, ip: '127.0.0.1' } }
    })
    const app = await NestFactory.createMicroservice(consumerModule(version, url, queue, seen, failures), { strategy, logger: false, abortOnError: false })
    await app.listen()
    apps.push(app)
    servers.push(strategy)
  }
  const [v1, v2] = servers as [FlowTagRmqServer, FlowTagRmqServer]
  t.equal(v1.laneConsumer?.queueName, queue, 'stable reads Nest\'s queue')
  t.equal(v2.laneConsumer?.queueName, `${queue}.v2`, 'v2 its lane\'s queue')
  t.equal(typeof v1.unwrap<{ createChannel: unknown }>().createChannel, 'function', 'unwrap() is the amqplib connection')
  await waitFor('stable sees v2 live', async () => v1.laneConsumer!.liveLanes.has('v2'))
  const instances = await waitFor('both consumers in Nacos', async () => { const all = await admin.naming.instances('order-events'); return all.length === 2 && all })
  t.match(instances.map((i) => i.metadata).sort((a, b) => a.version!.localeCompare(b.version!)), [
    { version: 'v1', 'flowtag.role': 'consumer', 'flowtag.consumer': queue, protocol: 'rabbitmq' },
    { version: 'v2', 'flowtag.role': 'consumer', 'flowtag.consumer': queue, protocol: 'rabbitmq' }
  ], 'each consumer registered in Nacos with its lane')

  class ShopController {
    readonly orders: ClientProxy
    constructor (orders: ClientProxy) {
      this.orders = orders
    }

    async order (body: { id: string }) {
      await lastValueFrom(this.orders.emit('order.created', body))
      return { sent: body.id }
    }

    price (body: { id: string }) {
      return lastValueFrom(this.orders.send('order.price', body))
    }
  }
  Controller()(ShopController)
  Inject('ORDERS')(ShopController, undefined, 0)
  method(ShopController, 'order', Post('order'))
  params(ShopController, 'order', [0, Body()])
  method(ShopController, 'price', Post('price'))
  params(ShopController, 'price', [0, Body()])
  class ShopModule {}
  Module({
    imports: [
      FlowTagModule.forRoot({ service: 'shop', nacos: { serverAddr: dev.address, ...fastClient }, registration: false, cacheDir: false }),
      ClientsModule.register([{ name: 'ORDERS', customClass: FlowTagClientRmq, options: { urls: [url], queue } }])
    ],
    controllers: [ShopController]
  })(ShopModule)
  const shop = await startApp(ShopModule, 'fastify')
  t.teardown(() => shop.app.close())

  const post = async (path: string, id: string, lane?: string): Promise<unknown> => {
    const res = await fetch(`${shop.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(lane === undefined ? {} : { 'x-flow-tag': lane }) }, body: JSON.stringify({ id }) })
    t.equal(res.status, 201, `${path} ${id}`)
    return res.json()
  }
  await post('/order', 'a-v2', 'v2')
  await post('/order', 'b-stable')
  await post('/order', 'c-v3', 'v3')
  await post('/order', 'd-retried', 'v2')
  const of = (id: string, pattern: string) => seen.find((s) => s.id === id && s.pattern === pattern)
  const ids = ['a-v2', 'b-stable', 'c-v3', 'd-retried']
  await waitFor('all orders and their audits handled', async () => ids.every((id) => of(id, 'order.created') !== undefined && of(id, 'order.audited') !== undefined), 30_000)
  t.same(of('a-v2', 'order.created'), { pattern: 'order.created', id: 'a-v2', by: 'v2', lane: 'v2', inProvider: 'v2' }, 'a v2 event goes to the v2 consumer, its handler in v2')
  t.same(of('b-stable', 'order.created'), { pattern: 'order.created', id: 'b-stable', by: 'v1', lane: null, inProvider: null }, 'an untagged event goes to stable')
  t.same(of('c-v3', 'order.created'), { pattern: 'order.created', id: 'c-v3', by: 'v1', lane: 'v3', inProvider: 'v3' }, 'an event of a lane with no live consumer goes to stable, still in its lane')
  t.same(of('a-v2', 'order.audited'), { pattern: 'order.audited', id: 'a-v2', by: 'v2', lane: 'v2', inProvider: 'v2' }, 'what a v2 handler emits stays in v2')
  t.same(of('b-stable', 'order.audited')?.by, 'v1')
  t.same(of('d-retried', 'order.created'), { pattern: 'order.created', id: 'd-retried', by: 'v2', lane: 'v2', inProvider: 'v2' }, 'a handler that fails twice: its message is retried, in its lane, until handled')
  t.equal(failures.get('d-retried'), 0)
  t.equal(seen.length, 8, 'each message handled once')
  t.match(v2.laneConsumer?.stats.lanes, { v2: { failed: 2 } }, 'the failures are counted')

  t.same(await post('/price', 'p-v2', 'v2'), { id: 'p-v2', by: 'v2', lane: 'v2' }, 'request-response in v2: answered by v2')
  t.same(await post('/price', 'p-stable'), { id: 'p-stable', by: 'v1', lane: null }, 'request-response untagged: answered by stable')

  // An event no handler matches: said (Nest's log), acked, not retried for ever.
  const orders = shop.app.get<ClientProxy>('ORDERS')
  const before = v1.laneConsumer!.stats.lanes.none?.handled ?? 0
  await lastValueFrom(orders.emit('order.unknown', { id: 'u-1' }))
  await waitFor('the unmatched event is settled', async () => (v1.laneConsumer!.stats.lanes.none?.handled ?? 0) > before)
  t.equal(v1.laneConsumer!.stats.lanes.none?.failed ?? 0, 0, 'an event with no handler does not fail')

  await apps.pop()!.close()
  await waitFor('v2 deregistered', async () => (await admin.naming.instances('order-events')).length === 1)
  await waitFor('stable drains v2\'s queue', async () => v1.laneConsumer!.draining.includes('v2'))
  await post('/order', 'e-v2-after', 'v2')
  await waitFor('a v2 event after v2 left is handled by stable', async () => of('e-v2-after', 'order.created')?.by === 'v1')
  t.equal(of('e-v2-after', 'order.created')?.lane, 'v2')
})

t.test('FlowTagRmqServer: bad options', async (t) => {
  t.throws(() => new FlowTagRmqServer({ queue: 'q' } as never), { code: 'FLOWTAG_NEST_BAD_OPTION', message: /"flowtag"/ })
  t.throws(() => new FlowTagRmqServer(undefined as never), { code: 'FLOWTAG_NEST_BAD_OPTION' })
  t.throws(() => new FlowTagRmqServer({ queue: 'q', flowtag: { service: 'x' } }).unwrap(), /Not initialized/)
  const url = rabbitUrl(t)
  if (url === undefined) return
  const strategy = new FlowTagRmqServer({ urls: [url], queue: unique('nest-bad'), flowtag: { service: 'x', stableLane: 'not a lane' } })
  class Empty {}
  Module({})(Empty)
  const app = await NestFactory.createMicroservice(Empty, { strategy, logger: false, abortOnError: false })
  await t.rejects(app.listen(), { code: 'FLOWTAG_MQ_BAD_OPTION', message: /"stableLane"/ })
  await app.close()
})
