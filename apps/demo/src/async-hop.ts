// The async hop (order-service → Kafka → notification-service → user-service), shared by the demo,
// its tests and the chaos suite: a Kafka to use, the topic, orders placed through the gateway
// (each answer names its order-created event), and the events notification-service handled
// (read from its log lines), judged by event id: lost, handled twice, handled outside their lane.
import { execFile, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { Agent, request } from 'undici'
import type { Hop } from './traffic.ts'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** A Kafka for the async hop: the one KAFKA_BROKERS names, or one started from tools/real-kafka. */
export interface DemoKafka {
  brokers: string
  /** Stops the broker if this process started it. */
  stop(): Promise<void>
}

/**
 * KAFKA_BROKERS when set; otherwise a real Kafka 4.4 started with tools/real-kafka when `java` and
 * `mvn` are on PATH (port DEMO_KAFKA_PORT, default 9092). Undefined, after saying why in one line,
 * when there is neither or the broker did not start: the demo then runs without the async hop.
 */
export async function demoKafka (say: (line: string) => void): Promise<DemoKafka | undefined> {
  const given = process.env.KAFKA_BROKERS
  if (given !== undefined && given !== '') {
    say(`async hop: Kafka at ${given} (KAFKA_BROKERS)`)
    return { brokers: given, stop: async () => {} }
  }
  const hint = 'async hop (order-created over Kafka to notification-service) off: install JDK 17 and Maven (tools/real-kafka starts Kafka from Maven Central), or set KAFKA_BROKERS=host:port'
  if (spawnSync('sh', ['-c', 'command -v java && command -v mvn'], { stdio: 'ignore' }).status !== 0) {
    say(hint)
    return undefined
  }
  const port = process.env.DEMO_KAFKA_PORT ?? '9092'
  say(`async hop: starting Kafka 4.4 on 127.0.0.1:${port} (tools/real-kafka; its first run downloads the jars from Maven Central)`)
  try {
    const { stdout } = await run(`${ROOT}tools/real-kafka/start.sh`, [], { env: { ...process.env, KAFKA_PORT: port }, timeout: 600_000 })
    const brokers = /KAFKA_BROKERS=(\S+)/.exec(stdout)?.[1]
    if (brokers === undefined) throw new Error(`no KAFKA_BROKERS line in ${JSON.stringify(stdout)}`)
    return {
      brokers,
      stop: async () => {
        await run(`${ROOT}tools/real-kafka/stop.sh`, [port], { timeout: 60_000 }).catch(() => {})
      }
    }
  } catch (err) {
    const e = err as Error & { stderr?: string }
    say(`${hint} (Kafka did not start: ${(e.stderr ?? e.message).trim().split('\n').at(-1)})`)
    return undefined
  }
}

/** Create `topic` with `partitions` partitions (several: a group's members share them); an existing one is kept. */
export async function ensureTopic (brokers: string, topic: string, partitions = 3): Promise<void> {
  const kafka = new Kafka({ clientId: 'flowtag-demo', brokers: brokers.split(','), logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }
}

/** One order-created event notification-service handled (its `order-created handled` log line). */
export interface Handled {
  eventId: string
  /** The consumer's version (its lane). */
  by: string
  /** The lane the event carried (null: untagged). */
  eventLane: string | null
  /** Handled by stable for a lane with no live consumer. */
  fallback: boolean
  /** Which user-service version the handler's call reached, and in which lane. */
  userService: Hop | null
  /** When (ms since the epoch, the consumer's clock). */
  t: number
}

/** The events notification-service instances handled: feed it their log lines (startApp's `onLog`). */
export class EventLog {
  readonly handled: Handled[] = []

  readonly onLog = (who: string, line: string): void => {
    if (!who.startsWith('notification-service@') || !line.includes('"order-created handled"')) return
    try {
      const l = JSON.parse(line) as { eventId: string, eventLane: string | null, fallback: boolean, userService: Hop | null, time: number }
      this.handled.push({ eventId: l.eventId, by: who.slice(who.indexOf('@') + 1), eventLane: l.eventLane, fallback: l.fallback, userService: l.userService, t: l.time })
    } catch {
      // a line cut by a SIGKILL: the event is handled again (not committed)
    }
  }

  /** The handlings of `eventId`. */
  of (eventId: string): Handled[] {
    return this.handled.filter((h) => h.eventId === eventId)
  }

  /** Waits until every id in `ids` was handled at least once; the ids still missing at `timeoutMs`. */
  async waitAll (ids: Iterable<string>, timeoutMs: number): Promise<string[]> {
    const want = [...ids]
    const end = Date.now() + timeoutMs
    for (;;) {
      const seen = new Set(this.handled.map((h) => h.eventId))
      const missing = want.filter((id) => !seen.has(id))
      if (missing.length === 0 || Date.now() > end) return missing
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

/** An order placed through the gateway: its lane (the gateway's decision) and its event. */
export interface Placed {
  orderId: string
  lane: string | null
  eventId: string
  /** When the gateway answered 201. */
  t: number
  hops: Hop[]
}

/** POST /api/orders/:id through the gateway; the placed order, or the failure as text. */
export async function placeOrder (gatewayUrl: string, orderId: string, headers: Record<string, string>, dispatcher?: Agent): Promise<Placed | string> {
  try {
    const res = await request(`${gatewayUrl}/api/orders/${encodeURIComponent(orderId)}`, { method: 'POST', headers, headersTimeout: 60_000, bodyTimeout: 60_000, ...(dispatcher === undefined ? {} : { dispatcher }) })
    const body = (await res.body.json()) as { hops?: Hop[], event?: { id: string } | null, error?: string, message?: string }
    if (res.statusCode !== 201 || body.event == null) return `${res.statusCode} ${body.error ?? ''} ${body.message ?? ''}`.trim()
    const hops = body.hops ?? []
    return { orderId, lane: hops[0]?.lane ?? null, eventId: body.event.id, t: Date.now(), hops }
  } catch (err) {
    return (err as Error).message
  }
}

/**
 * Orders placed through the gateway, one after another per worker, until stopped: every
 * `testerEvery`-th as a tester (lane v2), the others as ordinary users. A refused order is
 * counted and placed again (a new id), so `placed` holds every order whose event Kafka took.
 */
export class OrderLoad {
  readonly placed: Placed[] = []
  readonly refused: string[] = []
  #running = false
  #workers: Array<Promise<void>> = []
  #n = 0
  readonly #agent = new Agent({ connections: 8 })
  readonly #gatewayUrl: string
  readonly #prefix: string

  constructor (gatewayUrl: string, prefix = 'o') {
    this.#gatewayUrl = gatewayUrl
    this.#prefix = prefix
  }

  start (workers: number, pauseMs: number, testerEvery = 3): void {
    this.#running = true
    this.#workers = Array.from({ length: workers }, async () => {
      while (this.#running) {
        const n = this.#n++
        const headers: Record<string, string> = { 'x-user-id': `shopper-${n % 50}` }
        if (n % testerEvery === 0) headers['x-tester'] = 'true'
        const r = await placeOrder(this.#gatewayUrl, `${this.#prefix}${n}`, headers, this.#agent)
        if (typeof r === 'string') {
          this.refused.push(r)
          await new Promise((resolve) => setTimeout(resolve, 200))
        } else this.placed.push(r)
        await new Promise((resolve) => setTimeout(resolve, pauseMs))
      }
    })
  }

  async stop (): Promise<void> {
    this.#running = false
    await Promise.all(this.#workers)
    await this.#agent.close()
  }
}

/** How the events of `placed` were handled: lost, duplicates, and those handled outside their lane while `laneLive(t)` said the lane's consumer was live. */
export function judge (placed: Placed[], log: EventLog, laneLive: (lane: string, t: number) => boolean): { lost: string[], duplicates: number, misrouted: Handled[], wrongHop: Handled[] } {
  const laneOf = new Map(placed.map((p) => [p.eventId, p.lane]))
  const counts = new Map<string, number>()
  for (const h of log.handled) counts.set(h.eventId, (counts.get(h.eventId) ?? 0) + 1)
  const mine = log.handled.filter((h) => laneOf.has(h.eventId))
  return {
    lost: placed.filter((p) => !counts.has(p.eventId)).map((p) => p.eventId),
    duplicates: [...counts.entries()].filter(([id, c]) => laneOf.has(id) && c > 1).length,
    // a lane's event handled by another lane's consumer while its own consumer was live; a stable
    // event handled by a lane consumer, ever
    misrouted: mine.filter((h) => {
      const lane = laneOf.get(h.eventId) ?? 'v1'
      if (h.by === lane) return false
      return lane === 'v1' || laneLive(lane, h.t)
    }),
    // the handler's call to user-service left the event's lane (v1 for untagged), or the handler saw another lane
    wrongHop: mine.filter((h) => h.eventLane !== laneOf.get(h.eventId) || h.userService?.version !== (laneOf.get(h.eventId) ?? 'v1'))
  }
}
