// A lane-aware @platformatic/kafka consumer: the consumer groups in lanes of kafka-lanes.ts over
// @platformatic/kafka (its Admin for offsets and groups, one Consumer and message stream per
// group member). Offsets are committed by hand after each message is handled or skipped (the
// stream's monotonic commit queue), never before: a message in the stream's buffer when the
// member stops is read again by the group's next member.
import { Admin, Consumer, type Message, type Offsets } from '@platformatic/kafka'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import type { FlowContext } from '@flowtag/context'
import { ConsumerCore } from './consumer-core.ts'
import { errorCodes, MqError } from './errors.ts'
import type { MessageHeaders } from './headers.ts'
import { KafkaLanes, laneStep, type GroupReader, type KafkaPort, type ReaderSpec } from './kafka-lanes.ts'
import type { ConsumerStats } from './metrics.ts'
import { consumerOptionsSchema, parseWith, PKG } from './options.ts'

type Stream = Awaited<ReturnType<Consumer['consume']>>

export const platformaticConsumerOptionsSchema = consumerOptionsSchema.extend({
  /** @platformatic/kafka client options shared by the consumers and the admin: `bootstrapBrokers` (required), `clientId`, `sasl`, `tls`, ... */
  client: z.record(z.string(), z.unknown()).refine((c) => Array.isArray(c.bootstrapBrokers) && c.bootstrapBrokers.length > 0, { message: 'needs bootstrapBrokers (a non-empty array)' })
    .refine((c) => !('groupId' in c), { message: 'groupId is set per lane; use the groupId option' }),
  /** Base consumer group: the stable lane's group; lane L's is `<groupId>.<lane>`. */
  groupId: z.string().min(1).max(200),
  topics: z.array(z.string().min(1)).min(1),
  /** Where a group with no committed offset starts; a new strict lane group always starts at the earliest. */
  fromBeginning: z.boolean().default(false),
  /** Other consume() options (sessionTimeout, heartbeatInterval, maxWaitTime, ...); mode, topics, autocommit and deserializers are set here. */
  consumer: z.record(z.string(), z.unknown()).refine((c) => !['groupId', 'topics', 'mode', 'fallbackMode', 'autocommit', 'deserializers'].some((k) => k in c), { message: 'groupId, topics, mode, fallbackMode, autocommit and deserializers are set by the lane consumer' }).default({}),
  /** How long a lane consumer coming back waits for stable's stand-in to leave its group, in ms. */
  handoverTimeoutMs: z.number().int().min(0).max(600_000).default(30_000),
  /** How often the stable consumer re-reads the lane groups (new ones, deleted ones), in ms. */
  resyncMs: z.number().int().min(100).max(3_600_000).default(30_000),
  /** How often the group's lag (the end of each assigned partition minus what the group committed) is read for the lag gauge, in ms. */
  lagIntervalMs: z.number().int().min(100).max(3_600_000).default(5000)
})

export type PlatformaticLaneConsumerOptions = z.input<typeof platformaticConsumerOptionsSchema>

/** What the handler is given: the client's message (Buffer key, value and headers) plus the message's flow. */
export interface PlatformaticLaneMessage {
  message: Message<Buffer, Buffer, Buffer, Buffer>
  /** The flow the handler runs in (also `currentFlow()`). */
  flow: FlowContext
  /** Handled by stable for a lane with no live consumer. */
  fallback: boolean
}

export type PlatformaticLaneHandler = (payload: PlatformaticLaneMessage) => Promise<void> | void

/** A message's headers as the lane core reads them (names as strings, values as they came). */
function headersOf (m: Message<Buffer, Buffer, Buffer, Buffer>): MessageHeaders {
  const out: MessageHeaders = {}
  for (const [k, v] of m.headers) out[k.toString()] = v
  return out
}

/**
 * ```ts
 * const consumer = new PlatformaticLaneConsumer({ client: { bootstrapBrokers: ['127.0.0.1:9092'] },
 *   groupId: 'order-events', topics: ['orders'], service: 'order-worker', lane: process.env.LANE,
 *   stableLane: 'v1', nacos, registration: { port: metricsPort } })
 * await consumer.run(async ({ message, flow }) => { ... })   // inside the message's flow
 * process.on('SIGTERM', () => consumer.stop())
 * ```
 * A handler that throws fails the message: it is counted and retried in place (back-off 100 ms
 * doubling to 5 s) until it succeeds or the consumer stops; nothing past it is committed.
 * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` naming the bad field.
 */
export class PlatformaticLaneConsumer {
  /** This consumer's group: `<groupId>` in the stable lane, `<groupId>.<lane>` otherwise. */
  readonly group: string
  readonly #o: z.output<typeof platformaticConsumerOptionsSchema>
  readonly #core: ConsumerCore
  readonly #lanes: KafkaLanes
  #handler: PlatformaticLaneHandler | undefined

  constructor (options: PlatformaticLaneConsumerOptions) {
    this.#o = parseWith(platformaticConsumerOptionsSchema, options)
    const o = this.#o
    const lane = o.lane ?? o.stableLane
    this.group = lane === o.stableLane ? o.groupId : `${o.groupId}.${lane}`
    this.#core = new ConsumerCore(o, o.groupId, { system: 'kafka', destination: o.topics.join(','), group: this.group })
    this.#lanes = new KafkaLanes(o, this.#core, platformaticPort(o, this.#core, () => this.#handler as PlatformaticLaneHandler))
  }

  /** The consumer group of `lane`. */
  groupOf (lane: string): string {
    return this.#lanes.groupOf(lane)
  }

  get lane (): string {
    return this.#core.lane
  }

  /** Counts per message lane since start (handled, failed, skipped, fallback), refused tags, lag per partition of this consumer's group. */
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

  /**
   * Start (as KafkaLaneConsumer#run): resolves once consuming has started.
   * @throws {MqError} `FLOWTAG_MQ_LIFECYCLE` when called twice or after stop(); `FLOWTAG_MQ_DISCOVERY` when
   *   the consumers of the service cannot be read; `FLOWTAG_MQ_BROKER` when the broker refuses the setup.
   */
  async run (handler: PlatformaticLaneHandler): Promise<void> {
    if (typeof handler !== 'function') throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid argument "handler": expected a function`)
    if (this.#handler === undefined) this.#handler = handler
    await this.#lanes.run()
  }

  /** Finish the message in hand and commit, stop the stand-ins, then deregister. Idempotent. */
  stop (): Promise<void> {
    return this.#lanes.stop()
  }
}

class PlatformaticReader implements GroupReader {
  readonly #spec: ReaderSpec
  readonly #o: z.output<typeof platformaticConsumerOptionsSchema>
  readonly #core: ConsumerCore
  readonly #handler: PlatformaticLaneHandler
  readonly #consumer: Consumer<Buffer, Buffer, Buffer, Buffer>
  #stream: Stream | undefined
  #loop: Promise<void> = Promise.resolve()
  #commits: Promise<unknown> = Promise.resolve()
  #stopping = false
  #started: Promise<void> | undefined
  #stopped: Promise<void> | undefined

  constructor (spec: ReaderSpec, o: z.output<typeof platformaticConsumerOptionsSchema>, core: ConsumerCore, handler: PlatformaticLaneHandler) {
    this.#spec = spec
    this.#o = o
    this.#core = core
    this.#handler = handler
    this.#consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({ clientId: `flowtag-${spec.group}`, ...o.client, groupId: spec.group } as unknown as ConstructorParameters<typeof Consumer<Buffer, Buffer, Buffer, Buffer>>[0])
  }

  start (): Promise<void> {
    this.#started ??= (async () => {
      this.#stream = await this.#consumer.consume({
        ...this.#o.consumer,
        topics: this.#o.topics,
        mode: 'committed',
        fallbackMode: this.#spec.fromBeginning ? 'earliest' : 'latest',
        autocommit: false
      })
      this.#stream.on('error', (err: Error) => this.#o.logger?.warn({ err, group: this.#spec.group }, 'flowtag: message stream error'))
      this.#loop = this.#read(this.#stream)
      // the consumer's own group reports its lag per partition (a stand-in's is the lane's, not this consumer's)
      if (this.#spec.lane === undefined) {
        this.#consumer.on('consumer:lag', (lag: Offsets) => this.#lag(lag))
        this.#consumer.on('consumer:lag:error', (err: Error) => this.#o.logger?.warn({ err, group: this.#spec.group }, 'flowtag: could not read the group\'s lag'))
        this.#consumer.startLagMonitoring({ topics: this.#o.topics }, this.#o.lagIntervalMs)
      }
    })()
    return this.#started
  }

  /** Per partition: the lag of an assigned one; one no longer assigned (-1) is forgotten. */
  #lag (lag: Offsets): void {
    const metrics = this.#core.metrics
    for (const [topic, partitions] of lag) {
      for (let p = 0; p < partitions.length; p++) {
        const value = partitions[p] as bigint
        if (value >= 0n) metrics.lag(`${topic}/${p}`, Number(value))
        else if (value === -1n) metrics.clearLag(`${topic}/${p}`)
      }
    }
  }

  async #read (stream: Stream): Promise<void> {
    const own = this.#spec.lane === undefined
    for await (const message of stream as AsyncIterable<Message<Buffer, Buffer, Buffer, Buffer>>) {
      if (this.#stopping) break
      const headers = headersOf(message)
      for (let delay = 100; ; delay = Math.min(delay * 2, 5000)) {
        try {
          const step = laneStep(this.#core, headers, this.#spec.admit, own, (v) => this.#handler({ message, flow: v.flow, fallback: v.fallback }))
          if (step !== undefined) await step
          break
        } catch (err) {
          if (this.#stopping) return // not committed: the group's next member reads it again
          this.#o.logger?.warn({ err, flowtag: { group: this.#spec.group } }, 'flowtag: message handler failed; retrying it')
          await sleep(delay)
        }
      }
      // handled or skipped: commit over it (the stream merges commits per partition, highest offset wins)
      this.#commits = Promise.resolve(message.commit()).catch((err: unknown) => {
        // a commit refused after a rebalance: the partition's new owner reads the message again (at least once)
        this.#o.logger?.warn({ err, flowtag: { group: this.#spec.group } }, 'flowtag: offset commit failed')
      })
      if (this.#stopping) break
    }
  }

  stop (): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true
      await this.#started?.catch(() => {})
      this.#consumer.stopLagMonitoring()
      await this.#stream?.close().catch(() => {})
      await this.#loop.catch(() => {})
      await this.#commits
      await this.#consumer.close(true).catch(() => {})
    })()
    return this.#stopped
  }

  /** The first and next offsets of a topic's partitions (no group membership needed). */
  async bounds (topic: string): Promise<Array<{ partition: number, low: string, high: string }>> {
    const low = (await this.#consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? []
    const high = (await this.#consumer.listOffsets({ topics: [topic] })).get(topic) ?? []
    return high.map((h, partition) => ({ partition, low: String(low[partition] ?? 0n), high: String(h) }))
  }
}

/** kafka-lanes' port over @platformatic/kafka. */
function platformaticPort (o: z.output<typeof platformaticConsumerOptionsSchema>, core: ConsumerCore, handler: () => PlatformaticLaneHandler): KafkaPort {
  const admin = new Admin({ clientId: `flowtag-${o.groupId}-admin`, ...o.client } as unknown as ConstructorParameters<typeof Admin>[0])
  let meta: PlatformaticReader | undefined
  const metaReader = (): PlatformaticReader => (meta ??= new PlatformaticReader({ group: `flowtag-meta.${o.groupId}`, lane: 'meta', fromBeginning: false, admit: () => false }, o, core, handler()))
  return {
    connect: async () => {},
    disconnect: async () => {
      await meta?.stop()
      await admin.close()
    },
    async committed (groupId) {
      const out = new Map<string, bigint>()
      const [group] = await admin.listConsumerGroupOffsets({ groups: [{ groupId, topics: o.topics.map((name) => ({ name, partitionIndexes: [] })) }] })
      for (const t of group?.topics ?? []) for (const p of t.partitions) out.set(`${t.name}\0${p.partitionIndex}`, p.committedOffset)
      return out
    },
    bounds: (topic) => metaReader().bounds(topic),
    setOffsets: (groupId, topic, partitions) => admin.alterConsumerGroupOffsets({ groupId, topics: [{ name: topic, partitionOffsets: partitions.map((p) => ({ partition: p.partition, offset: BigInt(p.offset) })) }] }),
    async members (groupId) {
      const groups = await admin.describeGroups({ groups: [groupId] })
      return groups.get(groupId)?.members.size ?? 0
    },
    groups: async () => [...(await admin.listGroups()).keys()],
    own: (spec) => new PlatformaticReader(spec, o, core, handler()),
    standIn: (spec) => new PlatformaticReader(spec, o, core, handler())
  }
}
