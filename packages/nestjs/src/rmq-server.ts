// Nest's RabbitMQ transport in lanes: Nest's own ServerRMQ (its deserializers, @MessagePattern /
// @EventPattern routing, replies, RmqContext) whose consuming is done by @flowtag/mq's
// AmqpLaneConsumer: the lane topology bound to the exchange the clients publish to, one queue per
// lane, stable draining the queues of lanes with no live consumer, registered in Nacos with its
// lane, every handler in its message's flow, each message acked after its handler.
import { AmqpLaneConsumer, laneChannel, type AmqpLaneConsumerOptions, type LaneChannelOptions } from '@flowtag/mq/amqplib'
import type { NacosClient } from '@flowtag/nacos'
import { ServerRMQ, type RmqOptions } from '@nestjs/microservices'
import type { Channel, ChannelModel } from 'amqplib'
import { handleEventToEnd } from './event-handler.ts'
import { consumerNacos, flowtagOption, type FlowTagConsumerOptions } from './message-options.ts'

/** AmqpLaneConsumer's options that the transport takes from Nest's own (`urls`, `queue`, `exchange`, `routingKey`, `prefetchCount`). */
type FromNest = 'connection' | 'exchange' | 'routingKey' | 'queue' | 'prefetch'

export type FlowTagRmqServerOptions = NonNullable<RmqOptions['options']> & {
  /**
   * The lane consumer's options (@flowtag/mq `AmqpLaneConsumer`): `service` (its Nacos service,
   * required), `lane` (default: the stable lane), `stableLane`, `mode`, `lanes`, `registration`
   * (`port`: a health or /metrics port), `trust`, `knownLanes`, `maxAttempts`,
   * `deadLetterExchange`, ...; `nacos` a NacosClient or its options; and `signTag` for what
   * this server publishes (replies, and a handler through the context's channel).
   * The stable queue is Nest's `queue`, lane L's `<queue>.<L>`; the exchange is `exchange`
   * (default: the queue's name, as Nest's `wildcards`), bound with `routingKey` (default `#`).
   */
  flowtag: FlowTagConsumerOptions<Omit<AmqpLaneConsumerOptions, FromNest>> & LaneChannelOptions
}

/** What a handler's `context.getChannelRef()` acks: nothing, the lane consumer acks after the handler. */
const SETTLE = new Set(['ack', 'nack', 'reject', 'ackAll', 'nackAll'])

/**
 * Nest's RabbitMQ transport, consuming by lane:
 *
 * ```ts
 * const app = await NestFactory.createMicroservice(AppModule, { strategy: new FlowTagRmqServer({
 *   urls: ['amqp://127.0.0.1:5672'], queue: 'orders',
 *   flowtag: { service: 'order-events', lane: process.env.LANE, stableLane: 'v1', nacos, registration: { port: 9464 } }
 * }) })
 * ```
 * @throws {FlowTagError} `FLOWTAG_NEST_BAD_OPTION` without `flowtag`; `FLOWTAG_MQ_BAD_OPTION` (at
 *   listen) naming a bad `flowtag` field; `FLOWTAG_MQ_BROKER` / `FLOWTAG_MQ_DISCOVERY` (at listen).
 */
export class FlowTagRmqServer extends ServerRMQ {
  readonly #flowtag: FlowTagRmqServerOptions['flowtag']
  #lanes: AmqpLaneConsumer | undefined
  #connection: ChannelModel | undefined
  #context: Channel | undefined
  #ownNacos: NacosClient | undefined

  constructor (options: FlowTagRmqServerOptions) {
    const { flowtag, ...nest } = options ?? ({} as FlowTagRmqServerOptions)
    const lanes = flowtagOption('FlowTagRmqServer', flowtag)
    super(nest)
    this.#flowtag = lanes
    // The lane consumer acks each message after its handler: Nest must not ack or nack.
    Object.assign(this, { noAck: true })
  }

  /** The lane consumer (`lane`, `queueName`, `liveLanes`, `draining`, `stats`), once listening. */
  get laneConsumer (): AmqpLaneConsumer | undefined {
    return this.#lanes
  }

  /** Replaces Nest's connection manager: an amqplib connection (recovering) and the lane consumer on it. */
  override async start (callback: (err?: unknown) => void): Promise<void> {
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
    const { connect } = await import('amqplib')
    const attempts = this.getOptionsProp(this.options, 'maxConnectionAttempts', -1) as number
    const url = this.urls[0] ?? 'amqp://localhost'
    const connection = await connect(url as string, { recovery: attempts > 0 ? { initialMaxRetries: attempts - 1 } : true }) as unknown as ChannelModel
    this.#connection = connection
    connection.on('error', (err: unknown) => this.logger.error(err))
    const channel = laneChannel(await connection.createChannel(), signOf(this.#flowtag))
    this.channel = channel as never // Nest's replies (sendToQueue to the caller's replyTo)
    const exchange = this.getOptionsProp(this.options, 'exchange', this.queue) as string
    await channel.assertExchange(exchange, this.getOptionsProp(this.options, 'exchangeType', 'topic') as string, { durable: true, arguments: this.getOptionsProp(this.options, 'exchangeArguments', {}) })
    this.#context = new Proxy(channel, {
      get: (target, prop) => SETTLE.has(prop as string) ? () => {} : Reflect.get(target, prop) as unknown
    })
    const { nacos: _nacos, signTag: _sign, ...flowtag } = this.#flowtag
    const { nacos, own } = consumerNacos(this.#flowtag)
    this.#ownNacos = own
    const prefetch = this.getOptionsProp(this.options, 'prefetchCount') as number | undefined
    const lanes = new AmqpLaneConsumer({
      ...flowtag,
      ...(nacos === undefined ? {} : { nacos }),
      connection,
      exchange,
      routingKey: this.getOptionsProp(this.options, 'routingKey', '#') as string,
      queue: this.queue,
      ...(prefetch === undefined ? {} : { prefetch })
    })
    this.#lanes = lanes
    await lanes.run(({ message }) => this.handleMessage(message, this.#context))
    this._status$.next('connected' as never)
  }

  /**
   * Awaits the handler and its stream, so a handler that fails fails the message: the lane
   * consumer publishes it again (and dead-letters it after `maxAttempts` with `deadLetterExchange`).
   */
  override handleEvent (pattern: string, packet: { data: unknown }, context: never): Promise<void> {
    return handleEventToEnd(this, pattern, packet, context, (m) => this.logger.error(m))
  }

  /** Stop consuming (handlers in flight finish and ack), deregister; close the channels and the connection; the Nacos client if made here. */
  override async close (): Promise<void> {
    await this.#lanes?.stop()
    await (this.channel as unknown as Channel | null)?.close().catch(() => {})
    await this.#connection?.close().catch(() => {})
    await this.#ownNacos?.close()
    this.#ownNacos = undefined
    this.#connection = undefined
    this.channel = null
    this.pendingEventListeners = []
  }

  /** The amqplib connection, once listening. */
  override unwrap<T> (): T {
    if (this.#connection === undefined) throw new Error('Not initialized. Please call the "listen"/"startAllMicroservices" method before accessing the server.')
    return this.#connection as T
  }
}

function signOf (o: LaneChannelOptions): LaneChannelOptions {
  return o.signTag === undefined ? {} : { signTag: o.signTag }
}
