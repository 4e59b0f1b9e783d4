// A lane-aware kafkajs consumer. One consumer group per lane of a service: `<groupId>` for the
// stable lane, `<groupId>.<lane>` for lane L. Every group reads every partition and commits over
// the messages it skips, so its lag does not grow because of other lanes' messages:
// - lane L's group handles L's messages;
// - the stable group handles untagged messages and, permissive, those of lanes with no live
//   consumer that never had a group; for a lane that has a group but no live consumer, the
//   stable consumer runs a stand-in member of that group (kafka-standin.ts), so the lane's
//   backlog is taken over exactly from the lane's committed offsets and handed back the same way.
import type { Admin, Consumer, ConsumerConfig, Kafka } from 'kafkajs'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { ConsumerCore } from './consumer-core.ts'
import { errorCodes, MqError } from './errors.ts'
import { processBatch } from './kafka-batch.ts'
import { StandIn } from './kafka-standin.ts'
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
  readonly #admin: Admin
  readonly #consumer: Consumer
  /** Lanes that have a consumer group: their messages are never handled by the stable group itself. */
  readonly #groups = new Set<string>()
  readonly #standIns = new Map<string, StandIn>()
  #handler: KafkaLaneHandler | undefined
  #resync: NodeJS.Timeout | undefined
  #syncing: Promise<void> = Promise.resolve()
  #stopped: Promise<void> | undefined
  #offChange: (() => void) | undefined

  constructor (options: KafkaLaneConsumerOptions) {
    this.#o = parseWith(kafkaConsumerOptionsSchema, options)
    const o = this.#o
    const lane = o.lane ?? o.stableLane
    this.group = lane === o.stableLane ? o.groupId : `${o.groupId}.${lane}`
    this.#core = new ConsumerCore(o, o.groupId, { system: 'kafka', destination: o.topics.join(','), group: this.group })
    this.#admin = o.kafka.admin()
    this.#consumer = o.kafka.consumer({ ...(o.consumer as Partial<ConsumerConfig>), groupId: this.group })
  }

  /** The consumer group of `lane`. */
  groupOf (lane: string): string {
    return lane === this.#o.stableLane ? this.#o.groupId : `${this.#o.groupId}.${lane}`
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
    return [...this.#standIns.keys()]
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
    if (this.#stopped !== undefined) throw new MqError(errorCodes.LIFECYCLE, `${PKG}: run() after stop(): create another consumer`)
    if (this.#handler !== undefined) throw new MqError(errorCodes.LIFECYCLE, `${PKG}: run() was already called`)
    this.#handler = handler
    const o = this.#o
    const core = this.#core
    core.pin()
    try {
      await this.#admin.connect()
      await core.startWatch()
      const stable = core.stable
      const strict = core.policy.strict
      const othersLive = core.watch.isLive(core.lane)
      if (!stable) await this.#startOffsets(strict)
      await core.register()
      if (!stable && !strict && !othersLive) await this.#waitForStandIn()
      if (stable) await this.#listGroups()
      await this.#consumer.connect()
      await this.#consumer.subscribe({ topics: o.topics, fromBeginning: o.fromBeginning || (!stable && strict) })
    } catch (err) {
      await core.deregister().catch(() => {})
      if (err instanceof MqError) throw err
      throw new MqError(errorCodes.BROKER, `${PKG}: could not set up consumer group "${this.group}": ${(err as Error).message}`, { cause: err })
    }
    this.#consumer.on(this.#consumer.events.CRASH, (e) => {
      // a consumer that will not restart must not stay registered: its lane would wait for it
      if (!e.payload.restart) void core.deregister()
    })
    this.#offChange = core.watch.onChange(({ came }) => {
      for (const lane of came) this.#groups.add(lane)
      this.#sync()
    })
    await this.#consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: (p) => processBatch(p, core, handler, (v) => v.handle && !(v.fallback && this.#groups.has(v.lane as string)))
    })
    this.#sync(true)
    this.#resync = setInterval(() => this.#sync(true), o.resyncMs)
    this.#resync.unref()
  }

  /**
   * Stop handling (kafkajs finishes the batch in hand and commits), stop the stand-ins, then
   * deregister: the lane's messages are taken over only from what this consumer committed.
   * Idempotent.
   */
  stop (): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  async #stop (): Promise<void> {
    clearInterval(this.#resync)
    this.#offChange?.()
    await this.#consumer.disconnect().catch(() => {})
    await this.#syncing
    await Promise.all([...this.#standIns.values()].map((s) => s.stop()))
    this.#standIns.clear()
    await this.#core.deregister()
    await this.#admin.disconnect().catch(() => {})
    this.#core.close()
  }

  /** A lane group with no committed offset starts where stable is (permissive) or at the earliest (strict). */
  async #startOffsets (strict: boolean): Promise<void> {
    const mine = await this.#fetch(this.group)
    const stable = strict ? new Map<string, bigint>() : await this.#fetch(this.groupOf(this.#core.policy.stable))
    for (const topic of this.#o.topics) {
      const ends = await this.#admin.fetchTopicOffsets(topic)
      const missing = ends.filter((e) => (mine.get(`${topic}\0${e.partition}`) ?? -1n) < 0n)
      if (missing.length === 0) continue
      const partitions = missing.map((e) => {
        const s = stable.get(`${topic}\0${e.partition}`) ?? -1n
        return { partition: e.partition, offset: s >= 0n ? String(s) : strict || this.#o.fromBeginning ? e.low : e.high }
      })
      // a group already running (another instance of the lane) keeps its own offsets
      await this.#admin.setOffsets({ groupId: this.group, topic, partitions }).catch(() => {})
    }
  }

  /** Wait (bounded) until the lane's group has no member: stable's stand-in has seen this registration and left. */
  async #waitForStandIn (): Promise<void> {
    const deadline = Date.now() + this.#o.handoverTimeoutMs
    while (Date.now() < deadline) {
      const { groups } = await this.#admin.describeGroups([this.group])
      if ((groups[0]?.members.length ?? 0) === 0) return
      await sleep(100)
    }
    this.#o.logger?.warn({ flowtag: { group: this.group, timeoutMs: this.#o.handoverTimeoutMs } }, 'flowtag: the lane group still has members; joining anyway')
  }

  async #fetch (groupId: string): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>()
    const topics = await this.#admin.fetchOffsets({ groupId, topics: this.#o.topics })
    for (const t of topics) for (const p of t.partitions) out.set(`${t.topic}\0${p.partition}`, BigInt(p.offset))
    return out
  }

  /** Bring the stand-ins in line with the live lanes and the policy, one sync at a time; `list`: re-read the lane groups first. */
  #sync (list = false): void {
    this.#syncing = this.#syncing.then(async () => {
      if (this.#stopped !== undefined) return
      try {
        if (list) await this.#listGroups()
        await this.#align()
      } catch (err) {
        this.#o.logger?.warn({ err, group: this.group }, 'flowtag: could not align the lane stand-ins; retrying at the next change or resync')
      }
    })
  }

  async #listGroups (): Promise<void> {
    const prefix = `${this.#o.groupId}.`
    const { groups } = await this.#admin.listGroups()
    const lanes = groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix)).map((g) => g.slice(prefix.length))
    for (const lane of lanes) this.#groups.add(lane)
  }

  async #align (): Promise<void> {
    const core = this.#core
    const policy = core.policy
    const wanted = new Set<string>()
    if (core.stable && !policy.strict) {
      for (const lane of this.#groups) if (lane !== policy.stable && !core.watch.isLive(lane)) wanted.add(lane)
    }
    for (const [lane, s] of this.#standIns) {
      if (wanted.has(lane)) continue
      this.#standIns.delete(lane)
      await s.stop()
    }
    for (const lane of wanted) {
      if (this.#standIns.has(lane) || this.#stopped !== undefined) continue
      const s = new StandIn(this.#o.kafka, this.#o.consumer as Partial<ConsumerConfig>, this.groupOf(lane), lane, this.#o.topics, core, this.#handler as KafkaLaneHandler)
      this.#standIns.set(lane, s)
      this.#o.logger?.warn({ flowtag: { group: this.group, lane } }, 'flowtag: lane has no live consumer; stable stands in for it')
      try {
        await s.start()
      } catch (err) {
        this.#standIns.delete(lane)
        await s.stop()
        throw err
      }
    }
  }
}
