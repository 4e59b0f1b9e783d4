// Consumer groups in lanes, whatever the Kafka client. One consumer group per lane of a
// service: `<groupId>` for the stable lane, `<groupId>.<lane>` for lane L. Every group reads
// every partition and commits over the messages it skips, so its lag does not grow because of
// other lanes' messages:
// - lane L's group handles L's messages;
// - the stable group handles untagged messages and, permissive, those of lanes with no live
//   consumer that never had a group; for a lane that has a group but no live consumer, the
//   stable consumer runs a stand-in member of that group, so the lane's backlog is taken over
//   exactly from the lane's committed offsets and handed back the same way. Kafka's group
//   protocol does the handover both ways: a partition belongs to one member at a time, so a
//   lane's messages are never handled by two readers at once and keep their per-key order.
// A client adapter (kafka-consumer.ts for kafkajs, platformatic-consumer.ts) gives a KafkaPort:
// a few admin calls and group readers that pass each message through laneStep().
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsumerCore, Verdict } from './consumer-core.ts'
import { errorCodes, MqError } from './errors.ts'
import type { MessageHeaders } from './headers.ts'
import { PKG } from './options.ts'

/** Decides, after the lane rules, whether this reader handles the message. */
export type Admit = (v: Verdict) => boolean

/** A member of one consumer group, reading `topics` and passing each message through laneStep(). */
export interface GroupReader {
  /** Join the group and start reading; resolves once reading has started. */
  start(): Promise<void>
  /** Finish the message in hand, commit, leave the group. Idempotent. */
  stop(): Promise<void>
}

export interface ReaderSpec {
  group: string
  /** The lane whose messages a stand-in reads; undefined for the consumer's own group. */
  lane: string | undefined
  /** Where a group with no committed offset starts. */
  fromBeginning: boolean
  admit: Admit
}

/** What the lanes need of a Kafka client. Offsets are decimal strings; keys of `committed` are `topic\0partition`. */
export interface KafkaPort {
  connect(): Promise<void>
  disconnect(): Promise<void>
  /** Committed offsets of `group` (negative: none). */
  committed(group: string): Promise<Map<string, bigint>>
  /** First and next offsets of every partition of `topic`. */
  bounds(topic: string): Promise<Array<{ partition: number, low: string, high: string }>>
  setOffsets(group: string, topic: string, partitions: Array<{ partition: number, offset: string }>): Promise<void>
  /** How many members `group` has now. */
  members(group: string): Promise<number>
  /** Every consumer group id of the cluster. */
  groups(): Promise<string[]>
  /** The consumer's own group member (created once). */
  own(spec: ReaderSpec): GroupReader
  /** A stand-in member of a lane's group. */
  standIn(spec: ReaderSpec): GroupReader
}

export interface KafkaLanesOptions {
  groupId: string
  /** The stable lane of the options (its group is `groupId` itself). */
  stableLane: string
  topics: string[]
  fromBeginning: boolean
  handoverTimeoutMs: number
  resyncMs: number
  logger?: { warn: (o: object, msg: string) => void } | undefined
}

/**
 * One message through the lane rules: decided (handle or skip), handled inside its flow by
 * `invoke`, and counted; the caller then marks it consumed either way. Returns a promise only
 * when the handler did (await it then); rethrows the handler's error (counted as failed) so the
 * client retries the message.
 * @param own the consumer's own group (it counts skips and refused tags); a stand-in does not
 */
export function laneStep (core: ConsumerCore, headers: MessageHeaders | undefined, admit: Admit, own: boolean, invoke: (v: Verdict) => unknown): Promise<void> | undefined {
  const v = core.verdict(headers, core.policy, own)
  if (admit(v)) return core.handle(v, () => invoke(v))
  if (own) core.metrics.skipped(v.lane)
  return undefined
}

export class KafkaLanes {
  /** This consumer's group: `<groupId>` in the stable lane, `<groupId>.<lane>` otherwise. */
  readonly group: string
  readonly #o: KafkaLanesOptions
  readonly #core: ConsumerCore
  readonly #port: KafkaPort
  /** Lanes that have a consumer group: their messages are never handled by the stable group itself. */
  readonly #groups = new Set<string>()
  readonly #standIns = new Map<string, GroupReader>()
  #own: GroupReader | undefined
  #running = false
  #resync: NodeJS.Timeout | undefined
  #syncing: Promise<void> = Promise.resolve()
  #stopped: Promise<void> | undefined
  #offChange: (() => void) | undefined

  constructor (o: KafkaLanesOptions, core: ConsumerCore, port: KafkaPort) {
    this.#o = o
    this.#core = core
    this.#port = port
    this.group = this.groupOf(core.lane)
  }

  /** The consumer group of `lane`. */
  groupOf (lane: string): string {
    return lane === this.#o.stableLane ? this.#o.groupId : `${this.#o.groupId}.${lane}`
  }

  get standingIn (): string[] {
    return [...this.#standIns.keys()]
  }

  /**
   * Start: read the live lanes; in a lane, give a new lane group its start offsets, register in
   * Nacos and wait for stable's stand-in to leave the group; join the group. Resolves once
   * consuming has started.
   * @throws {MqError} `FLOWTAG_MQ_LIFECYCLE` when called twice or after stop(); `FLOWTAG_MQ_DISCOVERY`;
   *   `FLOWTAG_MQ_BROKER` when the broker refuses the setup.
   */
  async run (): Promise<void> {
    if (this.#stopped !== undefined) throw new MqError(errorCodes.LIFECYCLE, `${PKG}: run() after stop(): create another consumer`)
    if (this.#running) throw new MqError(errorCodes.LIFECYCLE, `${PKG}: run() was already called`)
    this.#running = true
    const o = this.#o
    const core = this.#core
    core.pin()
    try {
      await this.#port.connect()
      await core.startWatch()
      const stable = core.stable
      const strict = core.policy.strict
      const othersLive = core.watch.isLive(core.lane)
      if (!stable) await this.#startOffsets(strict)
      await core.register()
      if (!stable && !strict && !othersLive) await this.#waitForStandIn()
      if (stable) await this.#listGroups()
      this.#own = this.#port.own({
        group: this.group,
        lane: undefined,
        fromBeginning: o.fromBeginning || (!stable && strict),
        admit: (v) => v.handle && !(v.fallback && this.#groups.has(v.lane as string))
      })
      await this.#own.start()
    } catch (err) {
      await core.deregister().catch(() => {})
      if (err instanceof MqError) throw err
      throw new MqError(errorCodes.BROKER, `${PKG}: could not set up consumer group "${this.group}": ${(err as Error).message}`, { cause: err })
    }
    this.#offChange = core.watch.onChange(({ came }) => {
      for (const lane of came) this.#groups.add(lane)
      this.#sync()
    })
    this.#sync(true)
    this.#resync = setInterval(() => this.#sync(true), o.resyncMs)
    this.#resync.unref()
  }

  /** Stop reading (the message in hand is finished and committed), stop the stand-ins, then deregister. Idempotent. */
  stop (): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  async #stop (): Promise<void> {
    clearInterval(this.#resync)
    this.#offChange?.()
    await this.#own?.stop().catch(() => {})
    await this.#syncing
    await Promise.all([...this.#standIns.values()].map((s) => s.stop()))
    this.#standIns.clear()
    await this.#core.deregister()
    await this.#port.disconnect().catch(() => {})
    this.#core.close()
  }

  /** A lane group with no committed offset starts where stable is (permissive) or at the earliest (strict). */
  async #startOffsets (strict: boolean): Promise<void> {
    const mine = await this.#port.committed(this.group)
    const stable = strict ? new Map<string, bigint>() : await this.#port.committed(this.groupOf(this.#core.policy.stable))
    for (const topic of this.#o.topics) {
      const ends = await this.#port.bounds(topic)
      const missing = ends.filter((e) => (mine.get(`${topic}\0${e.partition}`) ?? -1n) < 0n)
      if (missing.length === 0) continue
      const partitions = missing.map((e) => {
        const s = stable.get(`${topic}\0${e.partition}`) ?? -1n
        return { partition: e.partition, offset: s >= 0n ? String(s) : strict || this.#o.fromBeginning ? e.low : e.high }
      })
      // a group already running (another instance of the lane) keeps its own offsets
      await this.#port.setOffsets(this.group, topic, partitions).catch(() => {})
    }
  }

  /** Wait (bounded) until the lane's group has no member: stable's stand-in has seen this registration and left. */
  async #waitForStandIn (): Promise<void> {
    const deadline = Date.now() + this.#o.handoverTimeoutMs
    while (Date.now() < deadline) {
      if (await this.#port.members(this.group) === 0) return
      await sleep(100)
    }
    this.#o.logger?.warn({ flowtag: { group: this.group, timeoutMs: this.#o.handoverTimeoutMs } }, 'flowtag: the lane group still has members; joining anyway')
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
    for (const g of await this.#port.groups()) if (g.startsWith(prefix)) this.#groups.add(g.slice(prefix.length))
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
      const s = this.#port.standIn({
        group: this.groupOf(lane),
        lane,
        // the lane group has offsets (its consumers committed them); fromBeginning only matters if not
        fromBeginning: true,
        // stable's to handle only while the lane has no live consumer and the policy allows it
        admit: (v) => v.lane === lane && !core.policy.strict && !core.watch.isLive(lane) && core.stable
      })
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
