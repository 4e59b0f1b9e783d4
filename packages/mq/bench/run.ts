/**
 * Produce -> handle with lanes against the bare client, in the same run, on real brokers
 * (KAFKA_BROKERS, RABBITMQ_URL: tools/real-kafka and tools/rabbitmq print them).
 *
 * Every round, for each broker:
 * - a producer process sends N messages with the bare client (no headers) and N with the lane
 *   producer (a third outside any flow, a third in the stable lane v1, a third in lane v2, which
 *   has no live consumer), order alternating per round: its send rate and CPU per message;
 * - then three consumer processes, one after the other (order rotated), each read the same 2N
 *   messages from the start (Kafka: a fresh group each; RabbitMQ: a queue each, both bound to the
 *   exchange before the messages were published): the bare client (kafkajs `eachMessage`, amqplib
 *   `consume` + ack) against the lane consumer in the stable lane (every message is its own: the
 *   v2 ones as fallback), with an OTel MeterProvider installed so its metrics are really recorded,
 *   and once more without one (the lane work alone). Their handlers count and return (the fixed
 *   cost of lanes); then the bare client and the lane consumer (with the SDK) once more with a
 *   handler that does work (`work()`: JSON.parse of the value, then 40 chained SHA-256 digests of
 *   it, about 50 µs of CPU here), what a real consumer sees.
 *   Throughput is first -> last message handled; CPU is the consumer process's over that window.
 * - the lane work alone, in a process of its own with no broker (`laneStep` of a stable consumer
 *   over the same mix of headers as Buffers, as kafkajs hands them over, with and without an SDK):
 *   CPU per message minus the same loop calling the handler directly. With `--base <dir>` (a
 *   directory inside packages/mq holding another version's src/ and this bench/run.ts, e.g. the
 *   parent commit's: `git archive <commit> src | tar -x -C <dir>`), that version's too, same rounds.
 * Ratios are lanes / bare (throughput) and bare / lanes (CPU per message): 1.0 = no cost.
 *
 *   node bench/run.ts [--rounds 5] [--messages 20000] [--only kafka|amqp] [--base <dir>] [--write]
 * --write replaces the "Message lanes" section of BENCHMARKS.md with this run's figures.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Kafka, logLevel, type Message } from 'kafkajs'
import amqplib from 'amqplib'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { runWithFlow } from '@flowtag/context'
import { StaticDiscovery } from '@flowtag/nacos'
import { KafkaLaneConsumer, laneProducer } from '../src/kafkajs.ts'
import { ConsumerCore } from '../src/consumer-core.ts'
import { laneStep } from '../src/kafka-lanes.ts'
import { laneHeaders } from '../src/headers.ts'
import { consumerOptionsSchema } from '../src/options.ts'
import { AmqpLaneConsumer, laneChannel } from '../src/amqplib.ts'

const benchmarksFile = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
const HEADING = '## Message lanes (@flowtag/mq)'
const self = fileURLToPath(import.meta.url)
const BATCH = 200
/** Messages each producer sends before the measured ones (consumers read them too: the counts include them). */
const WARMUP = 1000
/** Messages through the lane work alone, per measured loop. */
const LANE_WORK_N = 200_000
/** Chained SHA-256 digests per message in the `work` handler profile. */
const DIGESTS = 40

/** The `work` handler profile: parse the message as JSON, then DIGESTS chained SHA-256 digests of its bytes. */
function work (content: Buffer | null): void {
  JSON.parse(String(content))
  let h: Buffer = content ?? Buffer.alloc(0)
  for (let i = 0; i < DIGESTS; i++) h = createHash('sha256').update(h).digest()
}

interface Figures { perSec: number, cpuUsPerMsg: number }

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : String(process.argv[i + 1])
}

function env (name: string): string {
  const v = process.env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: start a broker (see tools/real-kafka, tools/rabbitmq)`)
  return v
}

const value = (i: number): Buffer => Buffer.from(JSON.stringify({ id: i, order: `order-${i}`, amount: i % 997 }))
/** The lane a lane-producer message is sent in: none, the stable lane, a lane with no consumer. */
const laneOfIndex = (i: number): string | undefined => [undefined, 'v1', 'v2'][i % 3]

async function inLane<T> (lane: string | undefined, fn: () => T): Promise<Awaited<T>> {
  return await (lane === undefined ? fn() : runWithFlow({ tag: lane, baggage: {} }, fn))
}

function measure (n: number, start: [number, NodeJS.CpuUsage]): Figures {
  const ms = performance.now() - start[0]
  const cpu = process.cpuUsage(start[1])
  return { perSec: n / (ms / 1000), cpuUsPerMsg: (cpu.user + cpu.system) / n }
}

// ---- producer process: `produce kafka|amqp <target> <n> <order>` prints {bare, lanes} ----

async function produceKafka (topic: string, n: number, order: string[]): Promise<Record<string, Figures>> {
  const kafka = new Kafka({ clientId: 'bench-producer', brokers: env('KAFKA_BROKERS').split(','), logLevel: logLevel.NOTHING })
  const bare = kafka.producer()
  const lanes = laneProducer(kafka.producer())
  await bare.connect()
  await lanes.connect()
  // warm-up (connections, metadata, JIT) with both, so the first measured variant does not pay it
  for (let i = 0; i < WARMUP; i += BATCH) {
    const messages = Array.from({ length: BATCH }, (_, j) => ({ value: value(i + j) }))
    await bare.send({ topic, messages })
    await inLane(laneOfIndex(i), () => lanes.send({ topic, messages }))
  }
  const out: Record<string, Figures> = {}
  for (const variant of order) {
    const start: [number, NodeJS.CpuUsage] = [performance.now(), process.cpuUsage()]
    for (let i = 0; i < n; i += BATCH) {
      if (variant === 'bare') {
        const messages: Message[] = []
        for (let j = i; j < Math.min(n, i + BATCH); j++) messages.push({ key: String(j), value: value(j) })
        await bare.send({ topic, messages })
      } else {
        // one send per lane, as a service sends from inside its requests' flows
        await Promise.all([0, 1, 2].map(async (k) => {
          const messages: Message[] = []
          for (let j = i + k; j < Math.min(n, i + BATCH); j += 3) messages.push({ key: String(j), value: value(j) })
          if (messages.length > 0) await inLane(laneOfIndex(i + k), () => lanes.send({ topic, messages }))
        }))
      }
    }
    out[variant] = measure(n, start)
  }
  await bare.disconnect()
  await lanes.disconnect()
  return out
}

async function produceAmqp (exchange: string, n: number, order: string[]): Promise<Record<string, Figures>> {
  const conn = await amqplib.connect(env('RABBITMQ_URL'))
  const bare = await conn.createConfirmChannel()
  const lanes = laneChannel(await conn.createConfirmChannel())
  for (let i = 0; i < WARMUP; i++) {
    bare.publish(exchange, 'order.created', value(i), { persistent: false })
    inLane(laneOfIndex(i), () => lanes.publish(exchange, 'order.created', value(i), { persistent: false }))
  }
  await bare.waitForConfirms()
  await lanes.waitForConfirms()
  const out: Record<string, Figures> = {}
  for (const variant of order) {
    const start: [number, NodeJS.CpuUsage] = [performance.now(), process.cpuUsage()]
    for (let i = 0; i < n; i += BATCH) {
      for (let j = i; j < Math.min(n, i + BATCH); j++) {
        if (variant === 'bare') bare.publish(exchange, 'order.created', value(j), { persistent: false })
        else inLane(laneOfIndex(j), () => lanes.publish(exchange, 'order.created', value(j), { persistent: false }))
      }
      await (variant === 'bare' ? bare : lanes).waitForConfirms()
    }
    out[variant] = measure(n, start)
  }
  await conn.close()
  return out
}

// ---- consumer process: `consume kafka|amqp bare|lanes <target> <n>` prints Figures ----

function counter (n: number, done: (f: Figures) => void): () => void {
  let seen = 0
  let start: [number, NodeJS.CpuUsage] | undefined
  return () => {
    if (seen === 0) start = [performance.now(), process.cpuUsage()]
    seen++
    // the first message opens the window: n - 1 handled inside it
    if (seen === n) done(measure(n - 1, start as [number, NodeJS.CpuUsage]))
  }
}

function meter () {
  const provider = new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] })
  return provider.getMeter('bench')
}

/** Consumer variants: `bare` or `lanes` (with an OTel SDK), `lanes-nosdk`; `-work` runs the work() handler. */
const profile = (variant: string) => ({ bare: variant.startsWith('bare'), sdk: variant !== 'lanes-nosdk', busy: variant.endsWith('-work') })

async function consumeKafka (variant: string, topic: string, n: number): Promise<Figures> {
  const kafka = new Kafka({ clientId: `bench-${variant}`, brokers: env('KAFKA_BROKERS').split(','), logLevel: logLevel.NOTHING })
  const group = `${topic}.${variant}`
  const { bare, sdk, busy } = profile(variant)
  return await new Promise<Figures>((resolve, reject) => {
    const tick = counter(n, resolve)
    if (bare) {
      const c = kafka.consumer({ groupId: group })
      c.connect().then(() => c.subscribe({ topics: [topic], fromBeginning: true }))
        .then(() => c.run({ eachMessage: async ({ message }) => { if (busy) work(message.value); tick() } })).catch(reject)
    } else {
      const c = new KafkaLaneConsumer({ kafka, groupId: group, topics: [topic], fromBeginning: true, service: 'bench-worker', stableLane: 'v1', discovery: new StaticDiscovery({}), ...(sdk ? { meter: meter() } : {}), resyncMs: 3_600_000 })
      c.run(({ message }) => { if (busy) work(message.value); tick() }).catch(reject)
    }
  })
}

async function consumeAmqp (variant: string, queue: string, exchange: string, n: number): Promise<Figures> {
  const connection = await amqplib.connect(env('RABBITMQ_URL'))
  const { bare, sdk, busy } = profile(variant)
  return await new Promise<Figures>((resolve, reject) => {
    const tick = counter(n, resolve)
    if (bare) {
      connection.createChannel().then(async (ch) => {
        await ch.prefetch(10)
        await ch.consume(queue, (m) => { if (m !== null) { if (busy) work(m.content); tick(); ch.ack(m) } })
      }).catch(reject)
    } else {
      const c = new AmqpLaneConsumer({ connection, exchange, queue, prefetch: 10, service: 'bench-worker', stableLane: 'v1', discovery: new StaticDiscovery({}), ...(sdk ? { meter: meter() } : {}) })
      c.run(({ message }) => { if (busy) work(message.content); tick() }).catch(reject)
    }
  })
}

// ---- lane work alone: `lanework sdk|nosdk <n>` prints { us } (CPU µs per message over the bare loop) ----

async function laneWork (sdk: boolean, n: number): Promise<{ us: number }> {
  const o = consumerOptionsSchema.parse({ service: 'bench-worker', stableLane: 'v1', discovery: new StaticDiscovery({}), ...(sdk ? { meter: meter() } : {}) })
  const core = new ConsumerCore(o, 'bench', { system: 'kafka', destination: 'bench', group: 'bench' })
  core.pin()
  await core.startWatch()
  // the bench's mix: a third untagged, a third in v1, a third in v2; header values as Buffers
  const headers = [undefined, 'v1', 'v2'].map((lane) => Object.fromEntries(Object.entries(laneHeaders(undefined, lane === undefined ? undefined : { tag: lane, baggage: {} })).map(([k, v]) => [k, Buffer.from(v)])))
  let handled = 0
  const handler = (): void => { handled++ }
  const admit = (v: { handle: boolean }): boolean => v.handle
  const cpu = async (loop: () => Promise<void>): Promise<number> => {
    await loop() // warm-up
    const start = process.cpuUsage()
    await loop()
    const c = process.cpuUsage(start)
    return (c.user + c.system) / n
  }
  const lanes = await cpu(async () => {
    for (let i = 0; i < n; i++) {
      const step = laneStep(core, headers[i % 3], admit, true, handler)
      if (step !== undefined) await step
    }
  })
  const bare = await cpu(async () => {
    for (let i = 0; i < n; i++) handler()
  })
  core.close()
  if (handled !== 4 * n) throw new Error(`handled ${handled}, expected ${4 * n}`)
  return { us: lanes - bare }
}

// ---- orchestrator ----

function child (args: string[], script = self): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // BENCH_CPU_PROF=<dir>: write a V8 CPU profile of every child (to find where the time goes)
    const prof = process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF]
    const p = spawn(process.execPath, [...prof, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env })
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${args.join(' ')} exited ${code}`))
      else resolve(JSON.parse(out.trim().split('\n').at(-1) as string))
    })
  })
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

interface Round { produce: Record<string, Figures>, consume: Record<string, Figures> }

/**
 * The consumer variants of round r, order rotated: the bare client, lanes with an OTel SDK, lanes
 * with the API's no-op meter (no-op handlers); then the bare client and lanes with the work() handler.
 */
function consumers (r: number): string[] {
  const noop = ['bare', 'lanes', 'lanes-nosdk']
  const busy = r % 2 === 0 ? ['bare-work', 'lanes-work'] : ['lanes-work', 'bare-work']
  return [...noop.slice(r % 3), ...noop.slice(0, r % 3), ...busy]
}

async function roundKafka (r: number, n: number): Promise<Round> {
  const kafka = new Kafka({ clientId: 'bench-admin', brokers: env('KAFKA_BROKERS').split(','), logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const topic = `bench-mq-${process.pid}-${r}`
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })
  await admin.disconnect()
  const order = r % 2 === 0 ? ['bare', 'lanes'] : ['lanes', 'bare']
  const produce = await child(['produce', 'kafka', topic, String(n), order.join(',')]) as Record<string, Figures>
  const consume: Record<string, Figures> = {}
  for (const v of consumers(r)) consume[v] = await child(['consume', 'kafka', v, topic, String(2 * (n + WARMUP))]) as Figures
  return { produce, consume }
}

async function roundAmqp (r: number, n: number): Promise<Round> {
  const exchange = `bench-mq-${process.pid}-${r}`
  const queueOf: Record<string, string> = {}
  for (const v of consumers(0)) queueOf[v] = `${exchange}.${v}-q`
  const bareQueues = [queueOf.bare as string, queueOf['bare-work'] as string]
  const laneQueues = [queueOf.lanes as string, queueOf['lanes-nosdk'] as string, queueOf['lanes-work'] as string]
  const connection = await amqplib.connect(env('RABBITMQ_URL'))
  const ch = await connection.createChannel()
  await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false })
  for (const q of bareQueues) {
    await ch.assertQueue(q, { durable: true })
    await ch.bindQueue(q, exchange, '#')
  }
  // the lane consumer declares its topology (bound to the exchange) on run(): run it once, stop it
  for (const queue of laneQueues) {
    const setup = new AmqpLaneConsumer({ connection, exchange, queue, service: 'bench-worker', stableLane: 'v1', discovery: new StaticDiscovery({}) })
    await setup.run(() => {})
    await setup.stop()
  }
  const order = r % 2 === 0 ? ['bare', 'lanes'] : ['lanes', 'bare']
  const produce = await child(['produce', 'amqp', exchange, String(n), order.join(',')]) as Record<string, Figures>
  const consume: Record<string, Figures> = {}
  for (const v of consumers(r)) consume[v] = await child(['consume', 'amqp', v, queueOf[v] as string, exchange, String(2 * (n + WARMUP))]) as Figures
  for (const q of [...bareQueues, ...laneQueues]) {
    await ch.deleteQueue(q)
    await ch.deleteExchange(`${q}.lanes`).catch(() => {})
    await ch.deleteExchange(`${q}.stable`).catch(() => {})
  }
  await ch.deleteExchange(exchange)
  await connection.close()
  return { produce, consume }
}

/** Medians of one table row, for the reading. */
export interface RowSummary { name: string, label: string, tput: number, cpu: number, extra: number }

function rows (name: string, rounds: Round[], summary: RowSummary[]): string[] {
  const out: string[] = []
  const lines = [
    ['produce', 'bare', 'lanes', 'produce'],
    ['consume', 'bare', 'lanes', 'consume, no-op handler'],
    ['consume', 'bare', 'lanes-nosdk', 'consume, no-op handler, no OTel SDK'],
    ['consume', 'bare-work', 'lanes-work', 'consume, work() handler']
  ] as const
  for (const [side, bare, lanes, label] of lines) {
    const per = (v: string, f: keyof Figures) => rounds.map((r) => (r[side][v] as Figures)[f])
    const tput = rounds.map((r) => (r[side][lanes] as Figures).perSec / (r[side][bare] as Figures).perSec)
    const cpu = rounds.map((r) => (r[side][bare] as Figures).cpuUsPerMsg / (r[side][lanes] as Figures).cpuUsPerMsg)
    const extra = rounds.map((r) => (r[side][lanes] as Figures).cpuUsPerMsg - (r[side][bare] as Figures).cpuUsPerMsg)
    const fmt = (xs: number[], d: number) => xs.map((x) => x.toFixed(d)).join(' / ')
    summary.push({ name, label, tput: median(tput), cpu: median(cpu), extra: median(extra) })
    out.push(`| ${name} ${label} | ${fmt(per(bare, 'perSec'), 0)} | ${fmt(per(lanes, 'perSec'), 0)} | ${fmt(tput, 2)} | **${median(tput).toFixed(3)}x** | ${fmt(per(bare, 'cpuUsPerMsg'), 1)} | ${fmt(per(lanes, 'cpuUsPerMsg'), 1)} | **${median(cpu).toFixed(3)}x** | ${median(extra).toFixed(1)} |`)
  }
  return out
}

async function main (): Promise<void> {
  const rounds = Number(arg('rounds', '5'))
  const n = Number(arg('messages', '20000'))
  const only = arg('only', 'all')
  const write = process.argv.includes('--write')
  const load = loadavg().map((x) => x.toFixed(1)).join(' / ')
  const table: string[] = []
  const summary: RowSummary[] = []
  const base = process.argv.includes('--base') ? fileURLToPath(new URL(`../${arg('base', '')}/bench/run.ts`, import.meta.url)) : undefined
  const work: Record<string, number[]> = { sdk: [], nosdk: [], 'base sdk': [], 'base nosdk': [] }
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 === 0 ? ['sdk', 'nosdk'] : ['nosdk', 'sdk']) {
      work[v]?.push(((await child(['lanework', v, String(LANE_WORK_N)])) as { us: number }).us)
      if (base !== undefined) work[`base ${v}`]?.push(((await child(['lanework', v, String(LANE_WORK_N)], base)) as { us: number }).us)
    }
  }
  console.error(`lane work alone: ${JSON.stringify(work)}`)
  for (const [name, round] of [['kafkajs', roundKafka], ['amqplib', roundAmqp]] as const) {
    if (only !== 'all' && !name.startsWith(only === 'kafka' ? 'kafka' : 'amqp')) continue
    const done: Round[] = []
    for (let r = 0; r < rounds; r++) {
      done.push(await round(r, n))
      console.error(`${name} round ${r + 1}/${rounds}: ${JSON.stringify(done.at(-1))}`)
    }
    table.push(...rows(name, done, summary))
  }
  const section = [
    HEADING,
    '',
    `\`pnpm bench\` in packages/mq (\`node bench/run.ts --rounds ${rounds} --messages ${n} --write\`, KAFKA_BROKERS and RABBITMQ_URL set) — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average at start ${load}.`,
    `Real brokers on loopback: Kafka 4 (tools/real-kafka, one KRaft node, topic of 2 partitions) and RabbitMQ (tools/rabbitmq). Each round: a producer process sends ${n} messages with the bare client (no headers) and ${n} with the lane producer (a third outside any flow, a third in the stable lane v1, a third in v2, a lane with no live consumer; kafkajs \`send\` of ${BATCH} messages per call, one call per lane; amqplib confirm channel, confirms awaited every ${BATCH}), order alternating per round, after ${WARMUP} warm-up messages with each. Then five consumer processes, one after the other, read the same ${2 * (n + WARMUP)} messages. With a **no-op handler** (it counts and returns: the fixed cost of lanes), order rotated: the bare client (kafkajs \`eachMessage\`; amqplib \`consume\`, prefetch 10, ack), the lane consumer in the stable lane (StaticDiscovery: no registry traffic; every message is its own, the v2 ones as fallback) with an OTel MeterProvider (Prometheus exporter, no server) so its per-lane metrics are recorded, and the same lane consumer with no SDK (the API's no-op meter: the lane work alone). With the **work() handler** (\`JSON.parse\` of the message value, then ${DIGESTS} chained SHA-256 digests of its bytes with node:crypto: about 50 µs of CPU per message on this machine, what a consumer doing real work sees), order alternating: the bare client and the lane consumer with the SDK. Consumer throughput is first -> last message handled; CPU is the process's over that window, per message.`,
    '',
    '| client, side | bare msg/s per round | lanes msg/s per round | lanes/bare per round | throughput lanes/bare (median) | bare CPU µs/msg per round | lanes CPU µs/msg per round | CPU-cost ratio bare/lanes (median) | extra CPU µs/msg (median) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...table,
    '',
    'Ratios are paired per round (same messages, same minute) because the machine is shared; 1.0 means lanes cost nothing, the goal is >= 0.95x. The producer side adds two headers (`x-flow-tag`, `baggage`) to two thirds of the messages, so its bytes on the wire grow too.',
    '',
    `The lane work alone (no broker, one process, ${rounds} rounds of ${LANE_WORK_N} messages: \`laneStep\` of the stable consumer over the same mix of headers, as Buffers, minus the same loop calling the handler directly): **${median(work.sdk as number[]).toFixed(2)} µs CPU per message with the OTel SDK** (${(work.sdk as number[]).map((x) => x.toFixed(2)).join(' / ')}), **${median(work.nosdk as number[]).toFixed(2)} µs without** (${(work.nosdk as number[]).map((x) => x.toFixed(2)).join(' / ')}).${base === undefined ? '' : ` The same, same rounds, for the version in \`${arg('base', '')}\`: ${median(work['base sdk'] as number[]).toFixed(2)} µs with the SDK (${(work['base sdk'] as number[]).map((x) => x.toFixed(2)).join(' / ')}), ${median(work['base nosdk'] as number[]).toFixed(2)} µs without (${(work['base nosdk'] as number[]).map((x) => x.toFixed(2)).join(' / ')}).`}`,
    '',
    'Goal (>= 0.95x, medians of this run; CPU-cost ratio / throughput ratio):',
    ...summary.map((r) => `- ${r.name} ${r.label}: CPU ${r.cpu.toFixed(3)}x, ${r.cpu >= 0.95 ? 'met' : 'not met'}; throughput ${r.tput.toFixed(3)}x, ${r.tput >= 0.95 ? 'met' : 'not met'}; +${r.extra.toFixed(1)} µs CPU per message.`),
    ''
  ].join('\n')
  console.log('\n' + section)
  if (!write) {
    console.log('(not written: pass --write to replace the section in BENCHMARKS.md)')
    return
  }
  let text = await readFile(benchmarksFile, 'utf8')
  const start = text.indexOf(HEADING)
  if (start === -1) text = text.replace(/\n*$/, '\n\n') + section
  else {
    const next = text.indexOf('\n## ', start + HEADING.length)
    text = text.slice(0, start) + section + (next === -1 ? '' : '\n' + text.slice(next + 1))
  }
  await writeFile(benchmarksFile, text)
  console.log(`written to ${benchmarksFile}`)
}

const [mode, broker, ...rest] = process.argv.slice(2)
if (mode === 'produce') {
  const [target, n, order] = rest as [string, string, string]
  const f = broker === 'kafka' ? await produceKafka(target, Number(n), order.split(',')) : await produceAmqp(target, Number(n), order.split(','))
  console.log(JSON.stringify(f))
  process.exit(0)
} else if (mode === 'lanework') {
  console.log(JSON.stringify(await laneWork(broker === 'sdk', Number(rest[0]))))
  process.exit(0)
} else if (mode === 'consume') {
  const [variant, target, ...more] = rest as [string, string, ...string[]]
  const f = broker === 'kafka' ? await consumeKafka(variant, target, Number(more[0])) : await consumeAmqp(variant, target, more[0] as string, Number(more[1]))
  console.log(JSON.stringify(f))
  process.exit(0)
} else {
  await main()
}
