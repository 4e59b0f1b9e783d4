// A lane-aware amqplib consumer. The broker routes each message once, atomically, at publish:
//   <exchange> --(routingKey)--> <queue>.lanes (headers exchange, alternate-exchange <queue>.stable)
//   <queue>.lanes --(flowtag-lane = L)--> <queue>.<L>       one queue per lane, declared by its consumers
//   <queue>.stable (fanout) --> <queue>                     the stable queue: untagged, and lanes with no queue
// A lane consumer reads its lane's queue; the stable consumer reads the stable queue and,
// permissive, also drains the queue of every lane with no live consumer (no stranded messages),
// leaving it as soon as the registry says the lane is live again. Messages are acked after
// their handler (at least once); a message in the wrong queue (a forged or mismatched lane,
// or one published before its lane's queue existed) is forwarded, never dropped.
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import type { FlowContext } from '@flowtag/context'
import { ConsumerCore, type Verdict } from './consumer-core.ts'
import { errorCodes, MqError } from './errors.ts'
import type { ConsumerStats } from './metrics.ts'
import { consumerOptionsSchema, laneSchema, parseWith, PKG } from './options.ts'
import { ROUTING_HEADER } from './amqp-producer.ts'

/** Header counting a message's failed attempts (set when it is published again after a failure). */
export const ATTEMPTS_HEADER = 'flowtag-attempts'

/** What the consumer needs of an amqplib connection: a ChannelModel, or a recovering one (`connect(url, { recovery })`). */
export type AmqpConnection = Pick<ChannelModel, 'createChannel' | 'createConfirmChannel'>

export const amqpConsumerOptionsSchema = consumerOptionsSchema.extend({
  /** The amqplib connection (`await amqplib.connect(url, { recovery: true })` survives broker restarts); the consumer opens its own channels. */
  connection: z.custom<AmqpConnection>((v) => typeof v === 'object' && v !== null && typeof (v as AmqpConnection).createChannel === 'function' && typeof (v as AmqpConnection).createConfirmChannel === 'function',
    { message: 'expected an amqplib connection (ChannelModel)' }),
  /** The exchange producers publish to (declared by the app). */
  exchange: z.string().min(1),
  /** The binding of the lane topology to `exchange` (ignored by fanout and headers exchanges). */
  routingKey: z.string().default('#'),
  /** Base queue name: the stable queue; lane L's queue is `<queue>.<L>`. */
  queue: z.string().min(1).max(200),
  /** Unacknowledged messages per channel (amqplib prefetch). */
  prefetch: z.number().int().min(1).max(65_535).default(10),
  /** Attempts of a failing message before it is dead-lettered (only with `deadLetterExchange`; otherwise it is retried). */
  maxAttempts: z.number().int().min(1).max(1000).default(5),
  /** Dead-letter exchange of the queues (`x-dead-letter-exchange`): where a message that failed `maxAttempts` times goes. */
  deadLetterExchange: z.string().min(1).optional(),
  /**
   * Lanes whose queues the stable consumer declares at start and drains when they have no live
   * consumer (besides those it has seen live): a lane's messages are routed to its queue from the
   * first one, in order, even before its consumer first starts.
   */
  knownLanes: z.array(laneSchema).default([]),
  /** How long a lane consumer coming back waits for stable to stop draining its queue, in ms. */
  handoverTimeoutMs: z.number().int().min(0).max(600_000).default(30_000),
  /** How often the queue's ready messages are read for the lag gauge, in ms. */
  lagIntervalMs: z.number().int().min(100).max(3_600_000).default(5000)
})

export type AmqpLaneConsumerOptions = z.input<typeof amqpConsumerOptionsSchema>

export interface AmqpLaneMessage {
  message: ConsumeMessage
  flow: FlowContext
  /** Handled by stable for a lane with no live consumer. */
  fallback: boolean
  /** Which queue it came from. */
  queue: string
}

export type AmqpLaneHandler = (payload: AmqpLaneMessage) => Promise<void> | void

/**
 * ```ts
 * const connection = await amqplib.connect(url)
 * const consumer = new AmqpLaneConsumer({ connection, exchange: 'orders', queue: 'order-events',
 *   service: 'order-worker', lane: process.env.LANE, stableLane: 'v1', nacos, registration: { port } })
 * await consumer.run(async ({ message, flow }) => { ... })
 * ```
 * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` naming the bad field.
 */
export class AmqpLaneConsumer {
  /** The queue this consumer reads: `<queue>` in the stable lane, `<queue>.<lane>` otherwise. */
  readonly queueName: string
  readonly #o: z.output<typeof amqpConsumerOptionsSchema>
  readonly #core: ConsumerCore
  readonly #seen = new Set<string>()
  readonly #drains = new Map<string, string>()
  #channel: Channel | undefined
  #confirm: ConfirmChannel | undefined
  #handler: AmqpLaneHandler | undefined
  #ownTag: string | undefined
  #syncing: Promise<void> = Promise.resolve()
  #inFlight = 0
  #reopening = false
  #lagTimer: NodeJS.Timeout | undefined
  readonly #tails = new Map<string, Promise<void>>()
  #stopped: Promise<void> | undefined
  #offChange: (() => void) | undefined

  constructor (options: AmqpLaneConsumerOptions) {
    this.#o = parseWith(amqpConsumerOptionsSchema, options)
    const o = this.#o
    const lane = o.lane ?? o.stableLane
    this.queueName = this.queueOf(lane)
    this.#core = new ConsumerCore(o, o.queue, { system: 'rabbitmq', destination: o.exchange, group: this.queueName })
    for (const l of o.knownLanes) this.#seen.add(l)
  }

  /** The queue of `lane`. */
  queueOf (lane: string): string {
    return lane === this.#o.stableLane ? this.#o.queue : `${this.#o.queue}.${lane}`
  }

  get lane (): string {
    return this.#core.lane
  }

  get stats (): ConsumerStats {
    return this.#core.metrics.stats
  }

  get liveLanes (): ReadonlySet<string> {
    return this.#core.watch.live
  }

  /** The lanes whose queues this (stable) consumer drains now. */
  get draining (): string[] {
    return [...this.#drains.keys()]
  }

  /**
   * Declare the lane topology, read the live lanes, register in Nacos, (in a lane coming back)
   * wait for stable to stop draining the lane's queue, then consume. Resolves once consuming.
   * @throws {MqError} `FLOWTAG_MQ_LIFECYCLE` when called twice or after stop(); `FLOWTAG_MQ_DISCOVERY` when
   *   the consumers of the service cannot be read (Nacos unreachable); `FLOWTAG_MQ_BROKER` when the broker refuses the topology.
   */
  async run (handler: AmqpLaneHandler): Promise<void> {
    if (typeof handler !== 'function') throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid argument "handler": expected a function`)
    if (this.#stopped !== undefined) throw new MqError(errorCodes.LIFECYCLE, `${PKG}: run() after stop(): create another consumer`)
    if (this.#handler !== undefined) throw new MqError(errorCodes.LIFECYCLE, `${PKG}: run() was already called`)
    this.#handler = handler
    const core = this.#core
    core.pin()
    try {
      await this.#openChannels()
      await this.#declareBase()
      await core.startWatch()
      for (const l of core.watch.live) this.#seen.add(l)
      const othersLive = core.watch.isLive(core.lane)
      if (!core.stable) await this.#declareLane(core.lane)
      else for (const l of this.#o.knownLanes) if (l !== core.policy.stable) await this.#declareLane(l)
      await core.register()
      if (!core.stable && !core.policy.strict && !othersLive) await this.#waitForDrain()
      await this.#consumeOwn()
    } catch (err) {
      await core.deregister().catch(() => {})
      if (err instanceof MqError) throw err
      throw new MqError(errorCodes.BROKER, `${PKG}: could not set up queue "${this.queueName}": ${(err as Error).message}`, { cause: err })
    }
    this.#offChange = core.watch.onChange(({ came }) => {
      for (const l of came) this.#seen.add(l)
      this.#sync()
    })
    this.#sync()
    const lag = async (): Promise<void> => {
      const ch = this.#channel
      if (ch === undefined || this.#stopped !== undefined) return
      const { messageCount } = await ch.checkQueue(this.queueName)
      core.metrics.lag(this.queueName, messageCount)
    }
    this.#lagTimer = setInterval(() => { lag().catch(() => {}) }, this.#o.lagIntervalMs)
    this.#lagTimer.unref()
    await lag().catch(() => {})
  }

  /**
   * Open the consuming and the confirming channel. A channel the broker closes (a refused
   * operation, or the connection lost: a broker restart) is reopened with back-off while the
   * connection can open channels (amqplib's recovering connection reconnects by itself); its
   * unacknowledged messages are redelivered by the broker.
   */
  async #openChannels (): Promise<void> {
    const ch = await this.#o.connection.createChannel()
    const confirm = await this.#o.connection.createConfirmChannel()
    for (const c of [ch, confirm]) {
      c.on('error', (err: Error) => this.#o.logger?.warn({ err, queue: this.queueName }, 'flowtag: channel error'))
      c.once('close', () => { if (this.#channel === ch || this.#confirm === confirm) this.#lost() })
    }
    await ch.prefetch(this.#o.prefetch)
    this.#channel = ch
    this.#confirm = confirm
  }

  async #consumeOwn (): Promise<void> {
    const ch = this.#channel as Channel
    const { consumerTag } = await ch.consume(this.queueName, (m) => this.#enqueue(ch, m, this.queueName))
    this.#ownTag = consumerTag
  }

  #lost (): void {
    if (this.#stopped !== undefined || this.#reopening) return
    this.#reopening = true
    const old = [this.#channel, this.#confirm]
    this.#channel = undefined
    this.#confirm = undefined
    this.#drains.clear()
    this.#ownTag = undefined
    void (async () => {
      for (const c of old) await c?.close().catch(() => {})
      for (let delay = 100; this.#stopped === undefined; delay = Math.min(delay * 2, 5000)) {
        try {
          await this.#openChannels()
          await this.#declareBase()
          if (!this.#core.stable) await this.#declareLane(this.#core.lane)
          await this.#consumeOwn()
          this.#o.logger?.warn({ flowtag: { queue: this.queueName } }, 'flowtag: channels reopened')
          break
        } catch (err) {
          this.#o.logger?.warn({ err, queue: this.queueName, retryInMs: delay }, 'flowtag: could not reopen the channels; retrying')
          await sleep(delay)
        }
      }
      this.#reopening = false
      this.#sync()
    })()
  }

  /** Stop consuming, let handlers in flight finish and ack, then deregister and close the channels. Idempotent. */
  stop (): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  async #stop (): Promise<void> {
    clearInterval(this.#lagTimer)
    this.#offChange?.()
    const ch = this.#channel
    if (ch !== undefined) {
      for (const tag of [this.#ownTag, ...this.#drains.values()]) if (tag !== undefined) await ch.cancel(tag).catch(() => {})
    }
    this.#drains.clear()
    await this.#syncing
    while (this.#inFlight > 0) await sleep(10)
    await this.#core.deregister()
    await ch?.close().catch(() => {})
    await this.#confirm?.close().catch(() => {})
    this.#core.close()
  }

  async #declareBase (): Promise<void> {
    const ch = this.#channel as Channel
    const q = this.#o.queue
    await ch.assertExchange(`${q}.stable`, 'fanout', { durable: true })
    await ch.assertExchange(`${q}.lanes`, 'headers', { durable: true, alternateExchange: `${q}.stable` })
    await ch.bindExchange(`${q}.lanes`, this.#o.exchange, this.#o.routingKey)
    await ch.assertQueue(q, this.#queueOptions())
    await ch.bindQueue(q, `${q}.stable`, '')
  }

  #queueOptions (): Options.AssertQueue {
    return this.#o.deadLetterExchange === undefined ? { durable: true } : { durable: true, deadLetterExchange: this.#o.deadLetterExchange }
  }

  /** The lane's queue and its binding: from now on the broker routes the lane's messages there. */
  async #declareLane (lane: string): Promise<void> {
    const ch = this.#channel as Channel
    await ch.assertQueue(this.queueOf(lane), this.#queueOptions())
    await ch.bindQueue(this.queueOf(lane), `${this.#o.queue}.lanes`, '', { 'x-match': 'all', [ROUTING_HEADER]: lane })
  }

  async #waitForDrain (): Promise<void> {
    const deadline = Date.now() + this.#o.handoverTimeoutMs
    const probe = await this.#o.connection.createChannel()
    try {
      while (Date.now() < deadline) {
        const { consumerCount } = await probe.checkQueue(this.queueName)
        if (consumerCount === 0) return
        await sleep(100)
      }
    } finally {
      await probe.close().catch(() => {})
    }
    this.#o.logger?.warn({ flowtag: { queue: this.queueName } }, 'flowtag: the lane queue still has consumers; consuming anyway')
  }

  #sync (): void {
    this.#syncing = this.#syncing.then(() => this.#align()).catch((err: unknown) => {
      this.#o.logger?.warn({ err, queue: this.queueName }, 'flowtag: could not align the drained lane queues')
    })
  }

  /** Drain the queue of each known lane with no live consumer (permissive, in the stable lane); stop when it comes back. */
  async #align (): Promise<void> {
    const ch = this.#channel
    if (this.#stopped !== undefined || ch === undefined) return
    const core = this.#core
    const policy = core.policy
    const wanted = new Set<string>()
    if (core.stable && !policy.strict) {
      for (const l of this.#seen) if (l !== policy.stable && !core.watch.isLive(l)) wanted.add(l)
    }
    for (const [lane, tag] of this.#drains) {
      if (wanted.has(lane)) continue
      this.#drains.delete(lane)
      await ch.cancel(tag)
    }
    for (const lane of wanted) {
      if (this.#drains.has(lane)) continue
      await this.#declareLane(lane)
      const queue = this.queueOf(lane)
      const { consumerTag } = await ch.consume(queue, (m) => this.#enqueue(ch, m, queue))
      this.#drains.set(lane, consumerTag)
      this.#o.logger?.warn({ flowtag: { queue: this.queueName, lane } }, 'flowtag: lane has no live consumer; stable drains its queue')
    }
  }

  /** One message at a time per queue, in delivery order: a key's messages keep their order within a lane. */
  #enqueue (ch: Channel, m: ConsumeMessage | null, queue: string): void {
    if (m === null) return
    this.#inFlight++
    const next = (this.#tails.get(queue) ?? Promise.resolve()).then(() => this.#deliver(ch, m, queue))
    this.#tails.set(queue, next)
  }

  /** Handle or forward one message, and ack it on the channel that delivered it. */
  async #deliver (ch: Channel, m: ConsumeMessage, queue: string): Promise<void> {
    try {
      const core = this.#core
      const v = core.verdict(m.properties.headers)
      const where = this.#route(v)
      if (where === 'handle') {
        try {
          const handled = core.handle(v, () => (this.#handler as AmqpLaneHandler)({ message: m, flow: v.flow, fallback: v.fallback, queue }))
          if (handled !== undefined) await handled
          ch.ack(m)
        } catch (err) {
          this.#o.logger?.warn({ err, flowtag: { queue, lane: v.lane } }, 'flowtag: message handler failed; the message is retried')
          await this.#failed(ch, m, queue)
        }
        return
      }
      core.metrics.skipped(v.lane)
      await this.#forward(m, where, v.lane)
      ch.ack(m)
    } catch (err) {
      // the channel went (broker restart): the unacked message is redelivered by the broker
      this.#o.logger?.warn({ err, queue }, 'flowtag: message left unacknowledged')
    } finally {
      this.#inFlight--
    }
  }

  /**
   * Handle here, or forward where the message belongs: untagged (or refused) ones to the stable
   * queue, a lane consumer's own lane whose lease ran out to stable, a lane with no live consumer
   * to stable (permissive), any other lane to its lane's queue (the lane exchange; back to stable
   * if that lane has no queue).
   */
  #route (v: Verdict): 'handle' | 'stable' | 'lane' {
    if (v.handle) return 'handle'
    if (v.lane === undefined) return 'stable'
    const core = this.#core
    if (!core.stable && v.lane === core.lane) return 'stable'
    // permissive, a lane with no live consumer is stable's: a lane queue nobody reads would keep it
    const policy = core.policy
    if (v.lane === policy.stable || (!policy.strict && !core.watch.isLive(v.lane))) return 'stable'
    return 'lane'
  }

  /** Publish a copy where it belongs (confirmed), before the original is acked: never lost, at worst twice. */
  async #forward (m: ConsumeMessage, where: 'stable' | 'lane', lane: string | undefined): Promise<void> {
    const q = this.#o.queue
    const confirm = this.#confirm as ConfirmChannel
    const headers: Record<string, unknown> = { ...(m.properties.headers ?? {}) }
    if (where === 'lane' && lane !== undefined) {
      await this.#declareLane(lane)
      headers[ROUTING_HEADER] = lane
    } else {
      delete headers[ROUTING_HEADER]
    }
    await new Promise<void>((resolve, reject) => {
      confirm.publish(where === 'lane' ? `${q}.lanes` : `${q}.stable`, '', m.content, { ...publishProps(m), headers }, (err) => (err === null || err === undefined ? resolve() : reject(asError(err))))
    })
  }

  /** A failed handler: published again with one more attempt, or dead-lettered after maxAttempts when a dead-letter exchange is set. */
  async #failed (ch: Channel, m: ConsumeMessage, queue: string): Promise<void> {
    // a malformed count (not a whole number >= 0: forged, or another producer's) restarts at 0,
    // so it cannot keep a message from ever reaching maxAttempts
    const prior = Number(m.properties.headers?.[ATTEMPTS_HEADER] ?? 0)
    const attempts = (Number.isSafeInteger(prior) && prior >= 0 ? prior : 0) + 1
    if (this.#o.deadLetterExchange !== undefined && attempts >= this.#o.maxAttempts) {
      ch.nack(m, false, false)
      return
    }
    const confirm = this.#confirm as ConfirmChannel
    await new Promise<void>((resolve, reject) => {
      confirm.sendToQueue(queue, m.content, { ...publishProps(m), headers: { ...(m.properties.headers ?? {}), [ATTEMPTS_HEADER]: attempts } }, (err) => (err === null || err === undefined ? resolve() : reject(asError(err))))
    })
    ch.ack(m)
  }
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

function publishProps (m: ConsumeMessage): Options.Publish {
  const p = m.properties
  const out: Options.Publish = { persistent: p.deliveryMode === 2 }
  if (p.contentType !== undefined) out.contentType = p.contentType as string
  if (p.contentEncoding !== undefined) out.contentEncoding = p.contentEncoding as string
  if (p.messageId !== undefined) out.messageId = p.messageId as string
  if (p.correlationId !== undefined) out.correlationId = p.correlationId as string
  if (p.type !== undefined) out.type = p.type as string
  if (p.timestamp !== undefined) out.timestamp = p.timestamp as number
  if (p.appId !== undefined) out.appId = p.appId as string
  if (p.replyTo !== undefined) out.replyTo = p.replyTo as string
  return out
}
