// Nest's Kafka transport in lanes: Nest's own ServerKafka (its kafkajs client, deserializers,
// @MessagePattern/@EventPattern routing, replies, KafkaContext) whose consuming is done by
// @flowtag/mq's KafkaLaneConsumer: one consumer group per lane, the stable group standing in for
// lanes with no live consumer, registered in Nacos with its lane, every handler in its message's flow.
import { KafkaLaneConsumer, laneProducer, type KafkaLaneConsumerOptions, type LaneProducerOptions } from '@flowtag/mq/kafkajs'
import type { NacosClient } from '@flowtag/nacos'
import { ServerKafka, type KafkaOptions } from '@nestjs/microservices'
import type { Kafka, Producer } from 'kafkajs'
import { badNestOption } from './errors.ts'
import { consumerNacos, flowtagOption, type FlowTagConsumerOptions } from './message-options.ts'

/** KafkaLaneConsumer's options that the transport takes from Nest's own (`client`, `consumer`, `subscribe`) and its handlers. */
type FromNest = 'kafka' | 'groupId' | 'topics' | 'fromBeginning' | 'consumer'

export type FlowTagKafkaServerOptions = NonNullable<KafkaOptions['options']> & {
  /**
   * The lane consumer's options (@flowtag/mq `KafkaLaneConsumer`): `service` (its Nacos service,
   * required), `lane` (default: the stable lane), `stableLane`, `mode`, `lanes`, `registration`
   * (`port`: a health or /metrics port), `trust`, `handoverTimeoutMs`, `resyncMs`, ...; `nacos` a
   * NacosClient or its options; and `signTag` for the replies this server produces.
   * The group is Nest's (`consumer.groupId` + `postfixId`), lane L's `<group>.<L>`; the topics are
   * the handlers' patterns.
   */
  flowtag: FlowTagConsumerOptions<Omit<KafkaLaneConsumerOptions, FromNest>> & LaneProducerOptions
}

/**
 * Nest's Kafka transport, consuming by lane:
 *
 * ```ts
 * const app = await NestFactory.createMicroservice(AppModule, { strategy: new FlowTagKafkaServer({
 *   client: { brokers: ['127.0.0.1:9092'] }, consumer: { groupId: 'orders' },
 *   flowtag: { service: 'order-events', lane: process.env.LANE, stableLane: 'v1', nacos, registration: { port: 9464 } }
 * }) })
 * ```
 * @throws {FlowTagError} `FLOWTAG_NEST_BAD_OPTION` without `flowtag`, or (at listen) for a RegExp
 *   pattern; `FLOWTAG_MQ_BAD_OPTION` (at listen) naming a bad `flowtag` field.
 */
export class FlowTagKafkaServer extends ServerKafka {
  readonly #flowtag: FlowTagKafkaServerOptions['flowtag']
  #lanes: KafkaLaneConsumer | undefined
  #ownNacos: NacosClient | undefined

  constructor (options: FlowTagKafkaServerOptions) {
    const { flowtag, ...nest } = options ?? ({} as FlowTagKafkaServerOptions)
    const lanes = flowtagOption('FlowTagKafkaServer', flowtag)
    super(nest)
    this.#flowtag = lanes
  }

  /** The lane consumer (`lane`, `group`, `liveLanes`, `standingIn`, `stats`), once listening. */
  get laneConsumer (): KafkaLaneConsumer | undefined {
    return this.#lanes
  }

  /** Replaces Nest's consumer: the lane consumer subscribes to the handlers' topics and runs each message in its flow. */
  override async start (callback: () => void): Promise<void> {
    try {
      await this.#start()
    } catch (err) {
      // Nothing half-started stays behind (the producer, a Nacos client made here, channels).
      await this.close().catch(() => {})
      throw err
    }
    callback()
  }

  async #start (): Promise<void> {
    const topics: string[] = []
    for (const pattern of this.messageHandlers.keys()) {
      if (typeof pattern !== 'string') throw badNestOption('pattern', `FlowTagKafkaServer consumes named topics; the pattern ${String(pattern)} is not a topic name (a RegExp pattern is not supported)`)
      topics.push(pattern)
    }
    const { nacos: _nacos, signTag, ...flowtag } = this.#flowtag
    const { groupId: _group, ...consumer } = this.options.consumer ?? {}
    const { nacos, own } = consumerNacos(this.#flowtag)
    this.#ownNacos = own
    const lanes = new KafkaLaneConsumer({
      ...flowtag,
      ...(nacos === undefined ? {} : { nacos }),
      kafka: this.client as unknown as Kafka,
      groupId: this.groupId,
      topics,
      fromBeginning: this.options.subscribe?.fromBeginning ?? false,
      consumer
    })
    this.#lanes = lanes
    this.consumer = lanes.consumer as never
    // Replies (and what a handler sends through KafkaContext's producer) carry the message's lane.
    const producer = (this.client as unknown as Kafka).producer(this.options.producer as never)
    this.producer = laneProducer(producer, signTag === undefined ? {} : { signTag }) as never
    this.registerConsumerEventListeners()
    this.registerProducerEventListeners()
    await (this.producer as unknown as Producer).connect()
    await lanes.run((payload) => this.handleMessage(payload as never))
  }

  /** Stop consuming (commit, leave the groups, deregister), then the producer; the Nacos client if made here. */
  override async close (): Promise<void> {
    await this.#lanes?.stop()
    await (this.producer as unknown as Producer | null)?.disconnect()
    await this.#ownNacos?.close()
    this.#ownNacos = undefined
    this.consumer = null
    this.producer = null
    this.client = null
  }
}
