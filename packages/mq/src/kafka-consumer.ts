// A lane-aware kafkajs consumer: the consumer groups in lanes of kafka-lanes.ts over kafkajs
// (its admin client for offsets and groups, one kafkajs consumer per group member).
import type { Admin, Consumer, ConsumerConfig, Kafka } from 'kafkajs'
import { z } from 'zod'
import { ConsumerCore } from './consumer-core.ts'
import { errorCodes, MqError } from './errors.ts'
import { KafkaLanes, type KafkaPort } from './kafka-lanes.ts'
import { KafkajsReader } from './kafka-standin.ts'
import type { KafkaLaneHandler } from './kafka-types.ts'
import type { ConsumerStats } from './metrics.ts'
import { consumerOptionsSchema, parseWith, PKG } from './options.ts'

export const kafkaConsumerOptionsSchema = consumerOptionsSchema.extend({
  /** The kafkajs client. */
  kafka: z.custom<Kafka>((v) => typeof v === 'object' && v !== null && typeof (v as Kafka).consumer === 'function' && typeof (v as Kafka).admin === 'function', { message: 'expected a kafkajs Kafka' }),
  /** Base consumer group: the stable lane's group; lane L's is `<groupId>.<lane>`. */
  groupId: z.string().min(1).max(200),
  topics: z.array(z.string().min(1)).min(1),
  /** Where a group with no committed offset starts (kafkajs' `fromBeginning`); a new strict lane group always starts at the earliest. */
  fromBeginning: z.boolean().default(false),
  /** Other kafkajs ConsumerConfig fields (sessionTimeout, retry, ...); `groupId` is set per lane. */
  consumer: z.record(z.string(), z.unknown()).refine((c) => !('groupId' in c), { message: 'groupId is set per lane; use the groupId option' }).default({}),
  /** How long a lane consumer coming back waits for stable's stand-in to leave its group, in ms. */
  handoverTimeoutMs: z.number().int().min(0).max(600_000).default(30_000),
  /** How often the stable consumer re-reads the lane groups (new ones, deleted ones), in ms. */
  resyncMs: z.number().int().min(100).max(3_600_000).default(30_000)
})

export type KafkaLaneConsumerOptions = z.input<typeof kafkaConsumerOptionsSchema>
export type { KafkaLaneHandler, KafkaLaneMessage } from './kafka-types.ts'

/**
 * ```ts
 * const consumer = new KafkaLaneConsumer({ kafka, groupId: 'order-events', topics: ['orders'],
 *   service: 'order-worker', lane: process.env.LANE, stableLane: 'v1',
 *   nacos, registration: { port: metricsPort } })
 * await consumer.run(async ({ message, flow }) => { ... })   // inside the message's flow
 * process.on('SIGTERM', () => consumer.stop())
 * ```
 * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` naming the bad field.
 */
export class KafkaLaneConsumer {
  /** This consumer's kafkajs group: `<groupId>` in the stable lane, `<groupId>.<lane>` otherwise. */
  readonly group: string
  readonly #o: z.output<typeof kafkaConsumerOptionsSchema>
  readonly #core: ConsumerCore
  readonly #lanes: KafkaLanes
  readonly #consumer: Consumer
  #handler: KafkaLaneHandler | undefined

  constructor (options: KafkaLaneConsumerOptions) {
    this.#o = parseWith(kafkaConsumerOptionsSchema, options)
    const o = this.#o
    const lane = o.lane ?? o.stableLane
    this.group = lane === o.stableLane ? o.groupId : `${o.groupId}.${lane}`
    this.#core = new ConsumerCore(o, o.groupId, { system: 'kafka', destination: o.topics.join(','), group: this.group })
    this.#consumer = o.kafka.consumer({ ...(o.consumer as Partial<ConsumerConfig>), groupId: this.group })
    this.#lanes = new KafkaLanes(o, this.#core, kafkajsPort(o.kafka, o.kafka.admin(), o.topics, o.consumer as Partial<ConsumerConfig>, this.#consumer, this.#core, () => this.#handler as KafkaLaneHandler))
  }

  /** The consumer group of `lane`. */
  groupOf (lane: string): string {
    return this.#lanes.groupOf(lane)
  }

  /** This consumer's lane. */
  get lane (): string {
    return this.#core.lane
  }

  /** Counts per message lane since start (handled, failed, skipped, fallback), refused tags, lag. */
  get stats (): ConsumerStats {
    return this.#core.metrics.stats
  }

  /** The lanes with a live consumer of this group now, as the registry pushed them. */
  get liveLanes (): ReadonlySet<string> {
    return this.#core.watch.live
  }

  /** The lanes this (stable) consumer stands in for now. */
  get standingIn (): string[] {
    return this.#lanes.standingIn
  }

  /** The kafkajs consumer (its events, pause/resume); do not call run() on it. */
  get consumer (): Consumer {
    return this.#consumer
  }

  /**
   * Start: read the live lanes; in a lane, give a new lane group its start offsets, register in
   * Nacos and wait for stable's stand-in to leave the group; join the group and handle messages
   * with `handler` inside each message's flow. Resolves once consuming has started. A handler
   * that throws fails the message: it is counted, and kafkajs retries it (its `retry` options).
   * @throws {MqError} `FLOWTAG_MQ_LIFECYCLE` when called twice or after stop(); `FLOWTAG_MQ_DISCOVERY` when
   *   the consumers of the service cannot be read (Nacos unreachable); `FLOWTAG_MQ_BROKER` when the broker refuses the setup.
   */
  async run (handler: KafkaLaneHandler): Promise<void> {
    if (typeof handler !== 'function') throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid argument "handler": expected a function`)
    if (this.#handler === undefined) this.#handler = handler
    await this.#lanes.run()
    const core = this.#core
    this.#consumer.on(this.#consumer.events.CRASH, (e) => {
      // a consumer that will not restart must not stay registered: its lane would wait for it
      if (!e.payload.restart) void core.deregister()
    })
  }

  /**
   * Stop handling (kafkajs finishes the batch in hand and commits), stop the stand-ins, then
   * deregister: the lane's messages are taken over only from what this consumer committed.
   * Idempotent.
   */
  stop (): Promise<void> {
    return this.#lanes.stop()
  }
}

/** kafka-lanes' port over kafkajs: the admin client, and one kafkajs consumer per group member. */
function kafkajsPort (kafka: Kafka, admin: Admin, topics: string[], config: Partial<ConsumerConfig>, own: Consumer, core: ConsumerCore, handler: () => KafkaLaneHandler): KafkaPort {
  return {
    connect: () => admin.connect(),
    disconnect: () => admin.disconnect(),
    async committed (groupId) {
      const out = new Map<string, bigint>()
      for (const t of await admin.fetchOffsets({ groupId, topics })) for (const p of t.partitions) out.set(`${t.topic}\0${p.partition}`, BigInt(p.offset))
      return out
    },
    bounds: (topic) => admin.fetchTopicOffsets(topic),
    setOffsets: (groupId, topic, partitions) => admin.setOffsets({ groupId, topic, partitions }),
    async members (groupId) {
      const { groups } = await admin.describeGroups([groupId])
      return groups[0]?.members.length ?? 0
    },
    groups: async () => (await admin.listGroups()).groups.map((g) => g.groupId),
    own: (spec) => new KafkajsReader(own, spec, topics, core, handler()),
    standIn: (spec) => KafkajsReader.create(kafka, config, spec, topics, core, handler())
  }
}
