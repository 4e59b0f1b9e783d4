// @platformatic/kafka in lanes against a real Kafka (KAFKA_BROKERS), mirroring the kafkajs
// adapter's guarantees: the producer stamps the flow's lane inside a flow and nothing outside;
// lane routing with a live lane consumer; a malformed lane header is handled as untagged,
// counted, never lost; permissive stand-in while the lane has no live consumer; no message
// lost when the lane consumer stops mid-stream; the lag gauge of the consumer's group. (SIGKILL,
// return and graceful stop across processes: kafka-handover.test.ts, for both clients.)
import t, { type Test } from 'tap'
import { Admin, Consumer, Producer, type Message } from '@platformatic/kafka'
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { currentTag, runWithFlow } from '@flowtag/context'
import { StaticDiscovery } from '@flowtag/nacos'
import { unique, waitFor } from '@flowtag/test-kit'
import { laneProducer, PlatformaticLaneConsumer } from '../src/platformatic-kafka.ts'
import { errorCodes } from '../src/index.ts'
import { kafkaBrokers } from './fixtures/brokers.ts'

const quick = { sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10_000, maxWaitTime: 200 }

async function setup (t: Test, brokers: string[], topics: string[]) {
  const admin = new Admin({ clientId: 'mq-test', bootstrapBrokers: brokers })
  t.teardown(() => admin.close())
  await admin.createTopics({ topics, partitions: 2, replicas: 1 })
  const producer = laneProducer(new Producer({ clientId: 'mq-test', bootstrapBrokers: brokers }))
  t.teardown(() => producer.close())
  const send = (value: string, lane?: string, headers?: Map<Buffer, Buffer>) => {
    const go = () => producer.send({ messages: [{ topic: topics[0] as string, key: Buffer.from(value), value: Buffer.from(value), ...(headers === undefined ? {} : { headers }) }] })
    return lane === undefined ? go() : runWithFlow({ tag: lane, baggage: {} }, go)
  }
  return { admin, producer, send }
}

interface Seen { by: string, value: string, lane: string | null, fallback: boolean }

t.test('produce in a flow, lane routing, a malformed lane header handled as untagged', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const topic = unique('orders')
  const { send } = await setup(t, brokers, [topic])
  const groupId = unique('g')
  const discovery = new StaticDiscovery({ w: [{ ip: '127.0.0.1', port: 1, metadata: { version: 'v2', 'flowtag.consumer': groupId } }] })
  const common = { client: { bootstrapBrokers: brokers }, groupId, topics: [topic], service: 'w', stableLane: 'v1', discovery, consumer: quick, fromBeginning: true, resyncMs: 200 }
  const saw: Seen[] = []
  const handler = (by: string) => ({ message, flow, fallback }: { message: Message<Buffer, Buffer, Buffer, Buffer>, flow: { tag?: string }, fallback: boolean }) => {
    t.equal(currentTag(), flow.tag, 'the handler runs in the message\'s flow')
    saw.push({ by, value: message.value.toString(), lane: flow.tag ?? null, fallback })
  }
  const stable = new PlatformaticLaneConsumer(common)
  const lane = new PlatformaticLaneConsumer({ ...common, lane: 'v2' })
  t.equal(lane.group, `${groupId}.v2`)
  await stable.run(handler('v1'))
  t.teardown(() => stable.stop())
  await lane.run(handler('v2'))
  t.teardown(() => lane.stop())
  await t.rejects(lane.run(() => {}), { code: errorCodes.LIFECYCLE })

  await send('plain')
  await send('in-v2', 'v2')
  await send('in-v1', 'v1')
  await send('in-v3', 'v3')
  await send('malformed', undefined, new Map([[Buffer.from('x-flow-tag'), Buffer.from('not a lane!')]]))
  await waitFor('five messages handled', () => saw.length === 5, 60_000)
  const by = (v: string) => saw.find((s) => s.value === v)
  t.same(by('plain'), { by: 'v1', value: 'plain', lane: null, fallback: false }, 'produced outside a flow: untagged, stable')
  t.same(by('in-v2'), { by: 'v2', value: 'in-v2', lane: 'v2', fallback: false }, 'a live lane\'s message: its consumer')
  t.same(by('in-v1'), { by: 'v1', value: 'in-v1', lane: 'v1', fallback: false })
  t.same(by('in-v3'), { by: 'v1', value: 'in-v3', lane: 'v3', fallback: true }, 'a lane with no consumer: stable, marked fallback')
  t.same(by('malformed'), { by: 'v1', value: 'malformed', lane: null, fallback: false }, 'a malformed lane: untagged, not lost')
  t.equal(stable.stats.refused, 1, 'and counted')
  // Each consumer reads every partition at its own pace: the skips are counted when it gets there.
  await waitFor('stable to skip the live lane\'s message', () => stable.stats.lanes.v2?.skipped === 1, 30_000)
  await waitFor('the lane consumer to skip the untagged ones', () => lane.stats.lanes.none?.skipped === 2, 30_000)
  t.equal(stable.stats.lanes.v2?.skipped, 1, 'stable skipped the live lane\'s message')
  t.equal(lane.stats.lanes.none?.skipped, 2, 'the lane consumer skipped the untagged ones')

  // the producer's headers on the wire
  const raw: Array<Message<Buffer, Buffer, Buffer, Buffer>> = []
  const reader = new Consumer({ clientId: 'raw', groupId: unique('raw'), bootstrapBrokers: brokers, ...quick })
  t.teardown(() => reader.close(true))
  const stream = await reader.consume({ topics: [topic], mode: 'earliest' })
  stream.on('data', (m) => raw.push(m))
  await waitFor('raw messages', () => raw.length === 5, 30_000)
  const header = (v: string, name: string) => {
    const m = raw.find((r) => r.value.toString() === v) as Message<Buffer, Buffer, Buffer, Buffer>
    for (const [k, val] of m.headers) if (k.toString() === name) return val.toString()
    return undefined
  }
  t.equal(header('in-v2', 'x-flow-tag'), 'v2')
  t.match(header('in-v2', 'baggage'), /flowtag\.lane=v2/)
  t.equal(header('plain', 'x-flow-tag'), undefined, 'nothing added outside a flow')
  await stream.close()
})

t.test('permissive: stable stands in while the lane has no live consumer; nothing lost when the lane consumer stops mid-stream', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const topic = unique('orders')
  const { send } = await setup(t, brokers, [topic])
  const groupId = unique('g')
  const discovery = new StaticDiscovery({})
  const v2Live = (live: boolean) => discovery.set('w', live ? [{ ip: '127.0.0.1', port: 1, metadata: { version: 'v2', 'flowtag.consumer': groupId } }] : [])
  const common = { client: { bootstrapBrokers: brokers }, groupId, topics: [topic], service: 'w', stableLane: 'v1', discovery, consumer: quick, fromBeginning: true, resyncMs: 200, handoverTimeoutMs: 15_000 }
  const saw: Seen[] = []
  const handler = (by: string) => async ({ message, flow, fallback }: { message: Message<Buffer, Buffer, Buffer, Buffer>, flow: { tag?: string }, fallback: boolean }) => {
    await new Promise((resolve) => setTimeout(resolve, 5))
    saw.push({ by, value: message.value.toString(), lane: flow.tag ?? null, fallback })
  }

  v2Live(true)
  const lane = new PlatformaticLaneConsumer({ ...common, lane: 'v2' })
  await lane.run(handler('v2'))
  const stable = new PlatformaticLaneConsumer(common)
  await stable.run(handler('v1'))
  t.teardown(() => stable.stop())
  await send('a', 'v2')
  await waitFor('v2 handles a', () => saw.some((s) => s.value === 'a'), 60_000)

  // a steady stream of v2 messages while the lane consumer stops and its instance goes
  let sending = true
  const sent: string[] = []
  const load = (async () => {
    for (let i = 0; sending; i++) {
      await send(`m${i}`, 'v2')
      sent.push(`m${i}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  await waitFor('some handled by v2', () => saw.filter((s) => s.by === 'v2').length >= 10, 60_000)
  await lane.stop()
  v2Live(false)
  await waitFor('stable stands in for v2', () => stable.standingIn.includes('v2'), 60_000)
  await waitFor('stable handles v2 messages', () => saw.some((s) => s.by === 'v1' && s.lane === 'v2'), 60_000)
  sending = false
  await load
  await waitFor('every sent message handled', () => sent.every((v) => saw.some((s) => s.value === v)), 60_000)
  const ownBy = saw.filter((s) => s.value !== 'a')
  t.ok(ownBy.every((s) => s.lane === 'v2'), 'only v2 messages')
  t.ok(ownBy.filter((s) => s.by === 'v1').every((s) => s.fallback), 'stable marks them fallback')
  const counts = new Map<string, number>()
  for (const s of saw) counts.set(s.value, (counts.get(s.value) ?? 0) + 1)
  const dup = [...counts.values()].filter((n) => n > 1).length
  t.comment(`sent ${sent.length}, handled ${saw.length}, duplicates ${dup} (at least once)`)
  t.equal(sent.filter((v) => !counts.has(v)).length, 0, 'none lost')

  // the lane comes back: the stand-in leaves, the lane consumer takes over from its group's offsets
  v2Live(true)
  await waitFor('the stand-in left', () => stable.standingIn.length === 0, 60_000)
  const back = new PlatformaticLaneConsumer({ ...common, lane: 'v2' })
  await back.run(handler('v2-back'))
  t.teardown(() => back.stop())
  await send('z', 'v2')
  await waitFor('z handled', () => saw.some((s) => s.value === 'z'), 60_000)
  t.equal(saw.find((s) => s.value === 'z')?.by, 'v2-back', 'by the lane consumer again')
})

t.test('the lag gauge: per partition of the consumer\'s group, as the broker has it, on /metrics', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  t.teardown(() => provider.shutdown())
  const topic = unique('orders')
  const { send } = await setup(t, brokers, [topic])
  let release = (): void => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const consumer = new PlatformaticLaneConsumer({ client: { bootstrapBrokers: brokers }, groupId: unique('g'), topics: [topic], service: 'w', stableLane: 'v1', discovery: new StaticDiscovery({}), consumer: quick, fromBeginning: true, lagIntervalMs: 200, meter: provider.getMeter('test') })
  const handled: string[] = []
  await consumer.run(async ({ message }) => {
    await gate
    handled.push(message.value.toString())
  })
  t.teardown(() => {
    release()
    return consumer.stop()
  })
  for (let i = 0; i < 6; i++) await send(`m${i}`, i % 2 === 0 ? 'v2' : undefined)
  const total = () => Object.values(consumer.stats.lag).reduce((a, b) => a + b, 0)
  // the handler holds the first message: nothing is committed, the whole backlog is lag
  await waitFor('the backlog in the gauge', () => Object.keys(consumer.stats.lag).length === 2 && total() === 6, 30_000)
  t.same(Object.keys(consumer.stats.lag).sort(), [`${topic}/0`, `${topic}/1`], 'one figure per partition')
  release()
  await waitFor('all handled', () => handled.length === 6, 30_000)
  await waitFor('the lag back to 0 once committed', () => total() === 0, 30_000)
  const { resourceMetrics } = await exporter.collect()
  const text = new PrometheusSerializer().serialize(resourceMetrics)
  t.match(text, new RegExp(`flowtag_mq_lag\\{[^}]*messaging_destination_partition_id="${topic}/0"[^}]*\\} 0`), 'the gauge on /metrics, per partition')
  t.match(text, /flowtag_mq_messages_total\{[^}]*flowtag_lane="v2"[^}]*flowtag_mq_outcome="handled"[^}]*\} 3/, 'the handled counts by lane')
})

t.test('options and lifecycle errors', async (t) => {
  const base = { client: { bootstrapBrokers: ['127.0.0.1:1'] }, groupId: 'g', topics: ['t'], service: 'w', discovery: new StaticDiscovery({}) }
  t.throws(() => new PlatformaticLaneConsumer({ ...base, topics: [] }), { code: errorCodes.BAD_OPTION, message: /"topics"/ })
  t.throws(() => new PlatformaticLaneConsumer({ ...base, client: {} }), { code: errorCodes.BAD_OPTION, message: /"client": needs bootstrapBrokers/ })
  t.throws(() => new PlatformaticLaneConsumer({ ...base, consumer: { autocommit: true } }), { message: /"consumer": groupId, topics, mode/ })
  t.throws(() => laneProducer({} as never), { code: errorCodes.BAD_OPTION, message: /"producer"/ })
  const c = new PlatformaticLaneConsumer({ ...base, client: { bootstrapBrokers: ['127.0.0.1:1'], retries: 0 } })
  await t.rejects(c.run('no' as never), { code: errorCodes.BAD_OPTION })
  await t.rejects(c.run(async () => {}), { code: errorCodes.BROKER, message: /could not set up consumer group "g"/ })
  await c.stop()
  await t.rejects(c.run(async () => {}), { code: errorCodes.LIFECYCLE, message: /run\(\) after stop\(\)/ })
})
