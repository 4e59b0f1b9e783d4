// A kafkajs member of one consumer group in lanes: the consumer's own group, or stable standing
// in for a lane whose last consumer went (permissive mode; see kafka-lanes.ts). Every message
// goes through the lane rules and is resolved either way, so the group commits over what it skips.
import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs'
import type { ConsumerCore } from './consumer-core.ts'
import { processBatch } from './kafka-batch.ts'
import type { GroupReader, ReaderSpec } from './kafka-lanes.ts'
import type { KafkaLaneHandler } from './kafka-types.ts'

export class KafkajsReader implements GroupReader {
  readonly consumer: Consumer
  readonly #spec: ReaderSpec
  readonly #core: ConsumerCore
  readonly #topics: string[]
  readonly #handler: KafkaLaneHandler
  #started: Promise<void> | undefined
  #stopped: Promise<void> | undefined

  constructor (consumer: Consumer, spec: ReaderSpec, topics: string[], core: ConsumerCore, handler: KafkaLaneHandler) {
    this.consumer = consumer
    this.#spec = spec
    this.#core = core
    this.#topics = topics
    this.#handler = handler
  }

  static create (kafka: Kafka, config: Partial<ConsumerConfig>, spec: ReaderSpec, topics: string[], core: ConsumerCore, handler: KafkaLaneHandler): KafkajsReader {
    return new KafkajsReader(kafka.consumer({ ...config, groupId: spec.group }), spec, topics, core, handler)
  }

  start (): Promise<void> {
    this.#started ??= this.#start()
    return this.#started
  }

  async #start (): Promise<void> {
    await this.consumer.connect()
    await this.consumer.subscribe({ topics: this.#topics, fromBeginning: this.#spec.fromBeginning })
    const own = this.#spec.lane === undefined
    await this.consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: (p) => processBatch(p, this.#core, this.#handler, this.#spec.admit, own)
    })
  }

  /** Leave the group (kafkajs finishes the batch in hand and commits). Idempotent. */
  stop (): Promise<void> {
    this.#stopped ??= (async () => {
      await this.#started?.catch(() => {})
      await this.consumer.disconnect().catch(() => {})
    })()
    return this.#stopped
  }
}
