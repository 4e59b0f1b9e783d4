// Nest's Kafka client (ClientKafka: `emit`, `send`, `ClientsModule`) whose producer writes the
// lane headers of the flow it is called in (@flowtag/mq's laneProducer).
import { laneProducer, type LaneProducerOptions } from '@flowtag/mq/kafkajs'
import { ClientKafka, type KafkaOptions } from '@nestjs/microservices'
import type { Producer } from 'kafkajs'
import type { ReplaySubject } from 'rxjs'

export type FlowTagClientKafkaOptions = NonNullable<KafkaOptions['options']> & {
  /** `signTag(lane)`: what to write in `x-flow-tag` (a signed tag); @default the plain lane. */
  flowtag?: LaneProducerOptions
}

/**
 * `emit()` and `send()` inside a flow (a request of FlowTagModule, a message of FlowTagKafkaServer)
 * carry its lane (`x-flow-tag`, `baggage`); outside one nothing is added. Everything else is ClientKafka's.
 *
 * ```ts
 * ClientsModule.register([{ name: 'ORDERS', customClass: FlowTagClientKafka, options: { client: { brokers } } }])
 * ```
 * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` (at connect) for an unknown `flowtag` key or a bad `signTag`.
 */
export class FlowTagClientKafka extends ClientKafka {
  // Typed as ClientProxy's, so the class is a `customClass` of ClientsModule.register() for the
  // compiler too (Nest 12 types ClientKafka's statuses narrower, which `Type<ClientProxy>` refuses).
  declare protected _status$: ReplaySubject<any> // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly #flowtag: LaneProducerOptions
  #wrapped: Producer | undefined

  constructor (options: FlowTagClientKafkaOptions = {}) {
    const { flowtag, ...nest } = options
    super(nest)
    this.#flowtag = flowtag ?? {}
  }

  override async connect (): Promise<Producer> {
    await super.connect()
    const producer = this._producer as unknown as Producer | null
    if (producer !== null && producer !== this.#wrapped) {
      this.#wrapped = laneProducer(producer, this.#flowtag)
      this._producer = this.#wrapped as never
    }
    return this._producer as unknown as Producer
  }
}
