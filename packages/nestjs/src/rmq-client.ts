// Nest's RabbitMQ client (ClientRMQ: `emit`, `send`, `ClientsModule`) in lanes: it publishes to the
// exchange FlowTagRmqServer binds its lane topology to, and its channel writes the lane headers
// of the flow it is called in (@flowtag/mq's laneChannel: `x-flow-tag`, `baggage`, `flowtag-lane`).
import { laneChannel, type LaneChannelOptions } from '@flowtag/mq/amqplib'
import { ClientRMQ, type RmqOptions } from '@nestjs/microservices'
import type { ReplaySubject } from 'rxjs'

export type FlowTagClientRmqOptions = NonNullable<RmqOptions['options']> & {
  /** `signTag(lane)`: what to write in `x-flow-tag` (a signed tag); @default the plain lane. */
  flowtag?: LaneChannelOptions
}

/**
 * `emit()` and `send()` publish to `exchange` (default: the queue's name) with the pattern as
 * routing key (Nest's `wildcards` mode, always on: a message sent straight to a queue would skip
 * the lanes), and inside a flow carry its lane; outside one nothing is added.
 *
 * ```ts
 * ClientsModule.register([{ name: 'ORDERS', customClass: FlowTagClientRmq, options: { urls: [url], queue: 'orders' } }])
 * ```
 * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` (at connect) for an unknown `flowtag` key or a bad `signTag`.
 */
export class FlowTagClientRmq extends ClientRMQ {
  // Typed as ClientProxy's, so the class is a `customClass` of ClientsModule.register() for the
  // compiler too (Nest 12 types ClientRMQ's statuses narrower, which `Type<ClientProxy>` refuses).
  declare protected _status$: ReplaySubject<any> // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly #flowtag: LaneChannelOptions

  constructor (options: FlowTagClientRmqOptions = {}) {
    const { flowtag, ...nest } = options
    super({ ...nest, wildcards: true })
    this.#flowtag = flowtag ?? {}
  }

  override createChannel (): Promise<void> {
    const ready = super.createChannel()
    if (this.channel !== null) this.channel = laneChannel(this.channel, this.#flowtag)
    return ready
  }
}
