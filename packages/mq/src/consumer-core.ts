// What a lane-aware consumer is whatever its broker: its lane, the live lanes of its service
// (pushed by the registry), the lane policy (the same resolver as HTTP), the trust policy for
// message headers, its registration in Nacos and its figures. The broker adapters (kafkajs.ts,
// amqplib.ts) only move messages and offsets; every lane decision is made here.
import { NacosRegistration } from '@flowtag/nacos'
import { CONSUMER_ROLE, ROLE_METADATA, type Discovery } from '@flowtag/outbound/lanes'
import type { FlowContext } from '@flowtag/context'
import { errorCodes, MqError } from './errors.ts'
import { FlowReader } from './flow-reader.ts'
import type { MessageHeaders } from './headers.ts'
import { CONSUMER_METADATA, LaneWatch } from './lane-watch.ts'
import { ConsumerMetrics, type ConsumerIdentity } from './metrics.ts'
import { consumerMode, consumerTrust, PKG, type ResolvedConsumerOptions } from './options.ts'
import { handles, PolicySource, type LanePolicy } from './ownership.ts'

/** The decision on one message. */
export interface Verdict {
  flow: FlowContext
  /** The message's honoured lane; undefined when untagged or refused. */
  lane: string | undefined
  /** This consumer handles it now. */
  handle: boolean
  /** Handled by stable for a lane with no live consumer. */
  fallback: boolean
}

export class ConsumerCore {
  readonly lane: string
  readonly service: string
  readonly key: string
  readonly watch: LaneWatch
  readonly metrics: ConsumerMetrics
  readonly #policy: PolicySource
  readonly #reader: FlowReader
  readonly #registration: NacosRegistration | undefined
  readonly #o: ResolvedConsumerOptions
  #stable: string | undefined
  #pinned: [LanePolicy, LanePolicy] | undefined

  /**
   * @param key what the consumer reads for (Kafka group base name, RabbitMQ queue): named in
   *   the `flowtag.consumer` metadata of its registration
   * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION`
   */
  constructor (o: ResolvedConsumerOptions, key: string, id: Omit<ConsumerIdentity, 'version'>) {
    this.#o = o
    this.key = key
    this.service = o.service
    this.lane = o.lane ?? o.stableLane
    const discovery: Discovery | undefined = o.discovery ?? (o.nacos?.naming as Discovery | undefined)
    if (discovery === undefined) throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid option "discovery": needs a Discovery, or nacos (its naming client is used)`)
    if ((o.nacos === undefined) !== (o.registration === undefined)) {
      throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid option "${o.nacos === undefined ? 'nacos' : 'registration'}": nacos and registration go together`)
    }
    try {
      this.#reader = new FlowReader(consumerTrust(o), o.otel, o.logger)
    } catch (err) {
      throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid option "trust": ${(err as Error).message}`, { cause: err })
    }
    this.#policy = new PolicySource(o.service, o.lanes, o.stableLane, consumerMode(o))
    this.watch = new LaneWatch(discovery, o.service, key, o.labelKey, () => this.policy.stable)
    this.metrics = new ConsumerMetrics({ ...id, version: this.lane }, o.meter)
    if (o.nacos !== undefined && o.registration !== undefined) {
      const { port, metadata, ...rest } = o.registration
      this.#registration = new NacosRegistration(o.nacos, {
        ...rest,
        port,
        service: o.service,
        version: this.lane,
        metadata: { ...metadata, [CONSUMER_METADATA]: key, [ROLE_METADATA]: CONSUMER_ROLE, protocol: id.system }
      })
    }
  }

  /** The lane policy now: the stable lane as pinned by `pin()`, strictness live. Read per message. */
  get policy (): LanePolicy {
    const p = this.#policy.current()
    if (this.#stable === undefined || p.stable === this.#stable) return p
    // the rules moved stable past the pinned lane: one object per change, not per message
    if (this.#pinned?.[0] !== p) this.#pinned = [p, Object.freeze({ stable: this.#stable, strict: p.strict })]
    return this.#pinned[1]
  }

  /**
   * Fix the stable lane for this consumer's life (called when it starts). The stable lane of a
   * running consumer never changes with the rules: two consumers seeing a promotion at
   * different moments would both skip (lose) or both handle untagged messages. A promotion
   * takes effect for consumers as they restart; until the old stable ones stop, untagged
   * messages may be handled twice, never lost.
   */
  pin (): void {
    this.#stable ??= this.#policy.current().stable
  }

  /** This consumer is in the stable lane (it handles untagged messages and, permissive, lanes with no live consumer). */
  get stable (): boolean {
    return this.lane === this.policy.stable
  }

  /** Registered and not draining (true when the app registers the consumer itself). */
  get ready (): boolean {
    return this.#registration?.ready ?? true
  }

  /**
   * Read the live lanes (and subscribe to their pushes). Without them a stable consumer would take
   * a live lane's messages, so the consumer does not start.
   * @throws {MqError} `FLOWTAG_MQ_DISCOVERY` when discovery cannot answer (Nacos unreachable, no snapshot).
   */
  async startWatch (): Promise<void> {
    try {
      await this.watch.start()
    } catch (err) {
      throw new MqError(errorCodes.DISCOVERY, `${PKG}: could not read the consumers of service "${this.service}" from discovery: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Register in Nacos (in the background, with retries, as every flowtag instance). */
  async register (): Promise<void> {
    await this.#registration?.start({ port: this.#o.registration?.port ?? 0 })
  }

  /** Deregister and wait `registration.drainMs`. */
  async deregister (): Promise<void> {
    await this.#registration?.drain()
    await this.#registration?.close()
  }

  /** Who handles a message with these headers now (`count`: count a refused lane). Never throws. */
  verdict (headers: MessageHeaders | undefined, policy: LanePolicy = this.policy, count = true): Verdict {
    const { flow, refused } = this.#reader.read(headers)
    if (refused && count) {
      this.metrics.refused()
      this.#o.logger?.debug({ flowtag: { service: this.service, key: this.key } }, 'flowtag: message lane refused; handled as untagged')
    }
    const lane = flow.tag
    const handle = handles(this.lane, lane, policy, (l) => this.watch.isLive(l))
    const fallback = handle && lane !== undefined && lane !== this.lane
    return { flow, lane, handle, fallback }
  }

  /**
   * Run `handler` inside the message's flow and count it. A handler that returns no promise is
   * counted at once and nothing is returned (no promise, no microtask per message); otherwise
   * the returned promise settles with it. Rethrows (rejects with) the handler's error after
   * counting it as failed.
   */
  handle (v: Verdict, handler: () => unknown): Promise<void> | undefined {
    const start = performance.now()
    let out: unknown
    try {
      out = this.#reader.run(v.flow, handler)
    } catch (err) {
      this.metrics.failed(v.lane, (performance.now() - start) / 1000, v.fallback, err)
      throw err
    }
    if (typeof (out as PromiseLike<unknown> | null)?.then !== 'function') {
      this.metrics.handled(v.lane, (performance.now() - start) / 1000, v.fallback)
      return undefined
    }
    return Promise.resolve(out).then(() => {
      this.metrics.handled(v.lane, (performance.now() - start) / 1000, v.fallback)
    }, (err: unknown) => {
      this.metrics.failed(v.lane, (performance.now() - start) / 1000, v.fallback, err)
      throw err
    })
  }

  close (): void {
    this.watch.close()
  }
}
