// Nest's Kafka and RabbitMQ transports in lanes as a user writes them (decorators, a custom
// strategy, `customClass` clients): type-checked by tsc against each Nest major with the published
// typings (skipLibCheck off). Not run here: @flowtag/nestjs's kafka and rmq suites run them
// against real brokers.
import { Controller, Inject, Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ClientsModule, Ctx, EventPattern, MessagePattern, Payload, type ClientProxy, type RmqContext } from '@nestjs/microservices'
import { lastValueFrom } from 'rxjs'
import { FlowTagModule, Lane, LaneContext } from '@flowtag/nestjs'
import { FlowTagClientKafka, FlowTagKafkaServer } from '@flowtag/nestjs/kafka'
import { FlowTagClientRmq, FlowTagRmqServer } from '@flowtag/nestjs/rmq'

// Nest 12 types an @EventPattern handler's parameters after the payload as `unknown`: its lane
// comes from LaneContext there, and from @Lane() in the @MessagePattern handler.
@Controller()
class OrderEvents {
  constructor (@Inject('AUDIT') private readonly audit: ClientProxy, private readonly lanes: LaneContext) {}

  @EventPattern('orders')
  async created (@Payload() order: { id: string }): Promise<void> {
    await lastValueFrom(this.audit.emit('audit', { id: order.id, lane: this.lanes.current }))
  }

  @MessagePattern('price')
  price (@Payload() order: { id: string }, @Lane() lane: string | undefined, @Ctx() context: RmqContext): { id: string, lane: string | null, pattern: string } {
    return { id: order.id, lane: lane ?? null, pattern: context.getPattern() }
  }
}

@Module({
  imports: [FlowTagModule.forRoot({ service: 'order-events', nacos: { serverAddr: '127.0.0.1:8848' }, registration: false }), ClientsModule.register([
    { name: 'AUDIT', customClass: FlowTagClientKafka, options: { client: { brokers: ['127.0.0.1:9092'] }, producerOnlyMode: true } },
    { name: 'AUDIT_RMQ', customClass: FlowTagClientRmq, options: { urls: ['amqp://127.0.0.1:5672'], queue: 'audit' } }
  ])],
  controllers: [OrderEvents]
})
class OrderEventsModule {}

const flowtag = { service: 'order-events', lane: process.env.LANE, stableLane: 'v1', nacos: { serverAddr: '127.0.0.1:8848' }, registration: { port: 9464 } }

export async function kafkaWorker (): Promise<void> {
  const app = await NestFactory.createMicroservice(OrderEventsModule, {
    strategy: new FlowTagKafkaServer({ client: { brokers: ['127.0.0.1:9092'] }, consumer: { groupId: 'order-events' }, flowtag })
  })
  await app.listen()
}

export async function rmqWorker (): Promise<void> {
  const strategy = new FlowTagRmqServer({ urls: ['amqp://127.0.0.1:5672'], queue: 'order-events', flowtag: { ...flowtag, maxAttempts: 3 } })
  const app = await NestFactory.createMicroservice(OrderEventsModule, { strategy })
  await app.listen()
  const live: ReadonlySet<string> | undefined = strategy.laneConsumer?.liveLanes
  void live
}
