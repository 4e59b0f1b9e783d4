// Nest's Kafka transport in lanes, against a real Kafka and the embedded Nacos: two Nest
// microservices on FlowTagKafkaServer (stable v1, and v2) register as consumers with their lane;
// a Nest HTTP service emits through FlowTagClientKafka in each request's lane. Each event is
// handled by the consumer of its lane (stable for a lane with no live consumer), its handler sees
// the lane (@Lane(), LaneContext), and what the handler emits keeps it.
import { NacosClient } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import { Body, Controller, Inject, Module, Post, type INestMicroservice } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ClientsModule, EventPattern, Payload, type ClientProxy } from '@nestjs/microservices'
import { Kafka, logLevel } from 'kafkajs'
import { lastValueFrom } from 'rxjs'
import t from 'tap'
import { FlowTagModule, Lane, LaneContext } from '../src/index.ts'
import { FlowTagClientKafka, FlowTagKafkaServer } from '../src/kafka.ts'
import { method, params, startApp } from './fixtures/apps.ts'
import { kafkaBrokers, unique } from './fixtures/brokers.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

interface Seen { topic: 'orders' | 'audit', id: string, by: string, lane: string | null, inProvider: string | null }

const lanelessModule = () => FlowTagModule.forRoot({ service: 'unused', nacos: { serverAddr: '127.0.0.1:1' }, registration: false, cacheDir: false })

function consumerModule (version: string, topics: { orders: string, audit: string }, brokers: string[], seen: Seen[], failures: Map<string, number>): new () => object {
  class EventsController {
    readonly audit: ClientProxy
    readonly lanes: LaneContext
    constructor (audit: ClientProxy, lanes: LaneContext) {
      this.audit = audit
      this.lanes = lanes
    }

    async order (data: { id: string }, lane: string | undefined) {
      await new Promise((resolve) => setTimeout(resolve, 1)) // the flow survives an async hop
      const left = failures.get(data.id) ?? 0
      if (left > 0) {
        failures.set(data.id, left - 1)
        throw new Error(`${data.id} fails this time`)
      }
      seen.push({ topic: 'orders', id: data.id, by: version, lane: lane ?? null, inProvider: this.lanes.current ?? null })
      await lastValueFrom(this.audit.emit(topics.audit, { id: data.id })) // in the message's lane
    }

    audited (data: { id: string }, lane: string | undefined) {
      seen.push({ topic: 'audit', id: data.id, by: version, lane: lane ?? null, inProvider: this.lanes.current ?? null })
    }
  }
  Controller()(EventsController)
  Inject('AUDIT')(EventsController, undefined, 0)
  Inject(LaneContext)(EventsController, undefined, 1)
  method(EventsController, 'order', EventPattern(topics.orders) as MethodDecorator)
  params(EventsController, 'order', [0, Payload()], [1, Lane()])
  method(EventsController, 'audited', EventPattern(topics.audit) as MethodDecorator)
  params(EventsController, 'audited', [0, Payload()], [1, Lane()])
  class EventsModule {}
  Module({
    imports: [lanelessModule(), ClientsModule.register([{ name: 'AUDIT', customClass: FlowTagClientKafka, options: { client: { brokers, clientId: `audit-${version}`, logLevel: logLevel.NOTHING }, producerOnlyMode: true } }])],
    controllers: [EventsController]
  })(EventsModule)
  return EventsModule
}

t.test('Nest Kafka transport: each event is handled by its lane\'s consumer, in its lane', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false, ...fastClient })
  t.teardown(() => admin.close())
  const topics = { orders: unique('nest-orders'), audit: unique('nest-audit') }
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING })
  const kadmin = kafka.admin()
  await kadmin.connect()
  await kadmin.createTopics({ topics: [{ topic: topics.orders, numPartitions: 2 }, { topic: topics.audit, numPartitions: 1 }], waitForLeaders: true })
  await kadmin.disconnect()

  const seen: Seen[] = []
  const failures = new Map([['d-retried', 1]])
  const group = unique('nest-orders')
  const servers: FlowTagKafkaServer[] = []
  const apps: INestMicroservice[] = []
  t.teardown(async () => { for (const app of apps.reverse()) await app.close() })
  for (const version of ['v1', 'v2']) {
    const strategy = new FlowTagKafkaServer({
      client: { brokers, clientId: `orders-${version}`, logLevel: logLevel.NOTHING },
      consumer: { groupId: group, sessionTimeout: 6000, heartbeatInterval: 500 },
      subscribe: { fromBeginning: true },
      flowtag: { service: 'order-events', lane: version, stableLane: 'v1', nacos: { serverAddr: dev.address, ...fastClient }, registration: { port: version === 'v1' ? 9464 : 9465, ip: '127.0.0.1' }, resyncMs: 1000 }
    })
    const app = await NestFactory.createMicroservice(consumerModule(version, topics, brokers, seen, failures), { strategy, logger: false, abortOnError: false })
    await app.listen()
    apps.push(app)
    servers.push(strategy)
  }
  const [v1, v2] = servers as [FlowTagKafkaServer, FlowTagKafkaServer]
  t.equal(v1.laneConsumer?.group, `${group}-server`, 'stable consumes in Nest\'s group')
  t.equal(v2.laneConsumer?.group, `${group}-server.v2`, 'v2 in its lane\'s group')
  await waitFor('stable sees v2 live', async () => v1.laneConsumer!.liveLanes.has('v2'))
  const instances = await waitFor('both consumers in Nacos', async () => { const all = await admin.naming.instances('order-events'); return all.length === 2 && all })
  t.match(instances.map((i) => i.metadata).sort((a, b) => a.version!.localeCompare(b.version!)), [
    { version: 'v1', 'flowtag.role': 'consumer', 'flowtag.consumer': group + '-server', protocol: 'kafka' },
    { version: 'v2', 'flowtag.role': 'consumer', 'flowtag.consumer': group + '-server', protocol: 'kafka' }
  ], 'each consumer registered in Nacos with its lane')

  // The producer: a Nest HTTP service that emits in its request's lane (x-flow-tag, service mode).
  class ShopController {
    readonly orders: ClientProxy
    constructor (orders: ClientProxy) {
      this.orders = orders
    }

    order (body: { id: string }) {
      return lastValueFrom(this.orders.emit(topics.orders, body)).then(() => ({ sent: body.id }))
    }
  }
  Controller()(ShopController)
  Inject('ORDERS')(ShopController, undefined, 0)
  method(ShopController, 'order', Post('order'))
  params(ShopController, 'order', [0, Body()])
  class ShopModule {}
  Module({
    imports: [
      FlowTagModule.forRoot({ service: 'shop', nacos: { serverAddr: dev.address, ...fastClient }, registration: false, cacheDir: false }),
      ClientsModule.register([{ name: 'ORDERS', customClass: FlowTagClientKafka, options: { client: { brokers, clientId: 'shop', logLevel: logLevel.NOTHING }, producerOnlyMode: true } }])
    ],
    controllers: [ShopController]
  })(ShopModule)
  const shop = await startApp(ShopModule, 'express')
  t.teardown(() => shop.app.close())

  const send = async (id: string, lane?: string): Promise<void> => {
    const res = await fetch(`${shop.url}/order`, { method: 'POST', headers: { 'content-type': 'application/json', ...(lane === undefined ? {} : { 'x-flow-tag': lane }) }, body: JSON.stringify({ id }) })
    t.equal(res.status, 201, `order ${id} sent`)
  }
  await send('a-v2', 'v2')
  await send('b-stable')
  await send('c-v3', 'v3') // no v3 consumer: stable handles it (permissive), in lane v3
  await send('d-retried', 'v2') // its handler fails once
  const of = (id: string, topic: Seen['topic']) => seen.find((s) => s.id === id && s.topic === topic)
  await waitFor('all orders and their audits handled', async () => ['a-v2', 'b-stable', 'c-v3', 'd-retried'].every((id) => of(id, 'orders') !== undefined && of(id, 'audit') !== undefined), 60_000)
  t.same(of('a-v2', 'orders'), { topic: 'orders', id: 'a-v2', by: 'v2', lane: 'v2', inProvider: 'v2' }, 'a v2 event goes to the v2 consumer, its handler in v2')
  t.same(of('b-stable', 'orders'), { topic: 'orders', id: 'b-stable', by: 'v1', lane: null, inProvider: null }, 'an untagged event goes to stable')
  t.same(of('c-v3', 'orders'), { topic: 'orders', id: 'c-v3', by: 'v1', lane: 'v3', inProvider: 'v3' }, 'an event of a lane with no live consumer goes to stable, still in its lane')
  t.same(of('a-v2', 'audit'), { topic: 'audit', id: 'a-v2', by: 'v2', lane: 'v2', inProvider: 'v2' }, 'what a v2 handler emits stays in v2')
  t.same(of('b-stable', 'audit'), { topic: 'audit', id: 'b-stable', by: 'v1', lane: null, inProvider: null })
  t.equal(of('c-v3', 'audit')?.lane, 'v3')
  t.same(of('d-retried', 'orders'), { topic: 'orders', id: 'd-retried', by: 'v2', lane: 'v2', inProvider: 'v2' }, 'a handler that fails: its message is retried, in its lane, until handled')
  t.equal(failures.get('d-retried'), 0)
  t.match(v2.laneConsumer?.stats.lanes, { v2: { failed: 1 } }, 'the failure is counted')
  t.equal(seen.length, 8, 'each event handled once')
  t.match(v1.laneConsumer?.stats, { refused: 0 })

  // Closing the v2 microservice deregisters its consumer.
  await apps.pop()!.close()
  await waitFor('v2 deregistered', async () => (await admin.naming.instances('order-events')).length === 1)
  t.pass('app.close() deregisters the consumer')
})

t.test('FlowTagKafkaServer: bad options', async (t) => {
  t.throws(() => new FlowTagKafkaServer({ client: { brokers: ['127.0.0.1:1'] } } as never), { code: 'FLOWTAG_NEST_BAD_OPTION', message: /"flowtag"/ })
  t.throws(() => new FlowTagKafkaServer(undefined as never), { code: 'FLOWTAG_NEST_BAD_OPTION' })
  const strategy = new FlowTagKafkaServer({ client: { brokers: ['127.0.0.1:1'] }, flowtag: { service: 'x', lane: 'not a lane' } })
  class Events {
    on () {}
  }
  Controller()(Events)
  method(Events, 'on', EventPattern('orders') as MethodDecorator)
  class EventsModule {}
  Module({ controllers: [Events] })(EventsModule)
  const app = await NestFactory.createMicroservice(EventsModule, { strategy, logger: false, abortOnError: false })
  await t.rejects(app.listen(), { code: 'FLOWTAG_MQ_BAD_OPTION', message: /"lane"/ })
  await app.close()

  const regexp = new FlowTagKafkaServer({ client: { brokers: ['127.0.0.1:1'] }, flowtag: { service: 'x' } })
  class Wild {
    on () {}
  }
  Controller()(Wild)
  method(Wild, 'on', EventPattern(/orders\..*/) as MethodDecorator)
  class WildModule {}
  Module({ controllers: [Wild] })(WildModule)
  const wild = await NestFactory.createMicroservice(WildModule, { strategy: regexp, logger: false, abortOnError: false })
  await t.rejects(wild.listen(), { code: 'FLOWTAG_NEST_BAD_OPTION', message: /"pattern"/ })
  await wild.close()
})
