// Stable standing in for a lane whose last consumer went (permissive mode): a member of the
// lane's own consumer group, run by the stable consumer, that handles the lane's messages from
// the lane group's committed offsets on. Kafka's group protocol does the handover both ways: the
// stand-in takes the partitions once the lane's last member has left (at once after a graceful
// stop; after the session timeout after a SIGKILL) and resumes from what the lane committed; it
// leaves as soon as the registry says the lane is live again, and the lane's consumer joins
// once it has left. A partition belongs to one member at a time, so a lane's messages are never
// handled by two readers at once and keep their per-key order.
import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs'
import type { ConsumerCore } from './consumer-core.ts'
import { processBatch } from './kafka-batch.ts'
import type { KafkaLaneHandler } from './kafka-types.ts'

export class StandIn {
  readonly lane: string
  readonly group: string
  readonly #consumer: Consumer
  readonly #core: ConsumerCore
  readonly #topics: string[]
  readonly #handler: KafkaLaneHandler
  #started: Promise<void> | undefined
  #stopped: Promise<void> | undefined

  constructor (kafka: Kafka, config: Partial<ConsumerConfig>, group: string, lane: string, topics: string[], core: ConsumerCore, handler: KafkaLaneHandler) {
    this.lane = lane
    this.group = group
    this.#core = core
    this.#topics = topics
    this.#handler = handler
    this.#consumer = kafka.consumer({ ...config, groupId: group })
  }

  start (): Promise<void> {
    this.#started ??= this.#start()
    return this.#started
  }

  async #start (): Promise<void> {
    await this.#consumer.connect()
    // the lane group has offsets (its consumers committed them); fromBeginning only matters if not
    await this.#consumer.subscribe({ topics: this.#topics, fromBeginning: true })
    const core = this.#core
    const lane = this.lane
    await this.#consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: (p) => processBatch(p, core, this.#handler, (v) => {
        if (v.lane !== lane) return false
        // stable's to handle only while the lane has no live consumer and the policy allows it
        const policy = core.policy
        return !policy.strict && !core.watch.isLive(lane) && core.stable
      }, false)
    })
  }

  /** Leave the group (kafkajs finishes the batch in hand and commits). Idempotent. */
  stop (): Promise<void> {
    this.#stopped ??= (async () => {
      await this.#started?.catch(() => {})
      await this.#consumer.disconnect().catch(() => {})
    })()
    return this.#stopped
  }
}
