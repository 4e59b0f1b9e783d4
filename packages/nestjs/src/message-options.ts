// What Nest's Kafka and RabbitMQ transports in lanes share: the `flowtag` option (the lane
// consumer's options of @flowtag/mq, with `nacos` a client or the options of one) and the Nacos
// client made from those options (closed with the transport).
import { FlowTagError } from '@flowtag/errors'
import type { ConsumerOptions } from '@flowtag/mq'
import { NacosClient, presetClientOptions, type NacosClientOptions } from '@flowtag/nacos'
import { errorCodes, PACKAGE } from './errors.ts'

/**
 * The `flowtag` option of the message transports: @flowtag/mq's consumer options (`service`,
 * `lane`, `stableLane`, `mode`, `lanes`, `registration`, `trust`, ...), with `nacos` a NacosClient
 * (left open, e.g. `app.get(FlowTagService).nacos`) or the options of one (created at listen,
 * closed with the transport).
 */
export type FlowTagConsumerOptions<O extends ConsumerOptions = ConsumerOptions> = Omit<O, 'nacos'> & { nacos?: NacosClient | NacosClientOptions }

/** @throws {FlowTagError} `FLOWTAG_NEST_BAD_OPTION` when `flowtag` is missing or not an object. */
export function flowtagOption<T> (transport: string, flowtag: T | undefined): T {
  if (typeof flowtag !== 'object' || flowtag === null) {
    throw new FlowTagError(errorCodes.BAD_OPTION, `${PACKAGE}: invalid option "flowtag" of ${transport}: expected the lane consumer's options ({ service, lane, nacos, registration, ... })`)
  }
  return flowtag
}

/** The NacosClient the consumer registers through, and the one made here (to close), if any. */
export function consumerNacos (options: FlowTagConsumerOptions): { nacos: NacosClient | undefined, own: NacosClient | undefined } {
  const given = options.nacos
  if (given === undefined || given instanceof NacosClient) return { nacos: given, own: undefined }
  // Credentials from NACOS_* where the options give none; connection labels from the consumer.
  const own = new NacosClient(presetClientOptions(given, { service: options.service, version: options.lane, env: options.registration?.env }))
  return { nacos: own, own }
}
