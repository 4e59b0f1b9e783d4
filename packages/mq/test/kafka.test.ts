// kafkajs in lanes against a real Kafka (KAFKA_BROKERS), in one process: the producer stamps the
// flow's lane (signed) inside a flow and nothing outside; the handler runs in the message's flow
// and what it produces carries the lane on; forged signatures are handled as untagged and
// counted; the figures reach a Prometheus exporter; strict lanes wait for their consumer.
import t, { type Test } from 'tap'
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs'
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { currentTag, runWithFlow, signTag } from '@flowtag/context'
import { StaticDiscovery } from '@flowtag/nacos'
import { unique, waitFor } from '@flowtag/test-kit'
import { KafkaLaneConsumer, laneProducer, type KafkaLaneMessage } from '../src/kafkajs.ts'
import { errorCodes } from '../src/index.ts'
import { kafkaBrokers } from './fixtures/brokers.ts'

const KEY = { id: 'k1', secret: 'a-secret-of-16-chars' }
const quick = { sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 }

async function setup (t: Test, brokers: string[], topics: string[]) {
  const kafka = new Kafka({ clientId: 'mq-test', brokers, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())
  await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 2 })), waitForLeaders: true })
  return { kafka, admin }
}

t.test('produce in a flow, consume in its flow, signed tags, figures on /metrics', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  const meter = provider.getMeter('test')
  t.teardown(() => provider.shutdown())
  const topic = unique('orders')
  const next = unique('shipments')
  const { kafka } = await setup(t, brokers, [topic, next])
  const sign = (lane: string) => signTag(lane, 600, KEY)
  const producer = laneProducer(kafka.producer(), { signTag: sign })
  await producer.connect()
  t.teardown(() => producer.disconnect())

  const consumer = new KafkaLaneConsumer({
    kafka,
    groupId: unique('g'),
    topics: [topic],
    fromBeginning: true,
    service: unique('worker'),
    stableLane: 'v1',
    discovery: new StaticDiscovery({}),
    trust: { signed: { keys: [KEY] } },
    meter,
    consumer: quick
  })
  t.equal(consumer.group, consumer.groupOf('v1'))
  t.equal(consumer.lane, 'v1')
  const seen: Array<{ value: string, tag: string | undefined, fallback: boolean }> = []
  await consumer.run(async ({ message, flow, fallback }: KafkaLaneMessage) => {
    seen.push({ value: String(message.value), tag: currentTag(), fallback })
    t.equal(flow.tag, currentTag())
    // the next hop, produced from inside the handler, carries the lane on
    await producer.send({ topic: next, messages: [{ value: `after-${String(message.value)}` }] })
  })
  t.teardown(() => consumer.stop())
  await t.rejects(consumer.run(async () => {}), { code: errorCodes.LIFECYCLE })

  await producer.send({ topic, messages: [{ value: 'plain' }] })
  await runWithFlow({ tag: 'v2', baggage: { tenant: 'acme' } }, () => producer.send({ topic, messages: [{ value: 'in-v2', headers: { own: 'kept' } }] }))
  await runWithFlow({ tag: 'v2', baggage: {} }, () => producer.sendBatch({ topicMessages: [{ topic, messages: [{ value: 'batch-v2' }] }] }))
  const forged = signTag('v2', 600, { id: 'k1', secret: 'not-the-right-secret' })
  await producer.send({ topic, messages: [{ value: 'forged', headers: { 'x-flow-tag': forged } }] })
  await waitFor('four messages handled', () => seen.length === 4, 30_000)
  const by = (v: string) => seen.find((s) => s.value === v)
  t.same(by('plain'), { value: 'plain', tag: undefined, fallback: false }, 'produced outside a flow: untagged')
  t.same(by('in-v2'), { value: 'in-v2', tag: 'v2', fallback: true }, 'produced in v2: handled in v2 (by stable: no v2 consumer)')
  t.same(by('batch-v2'), { value: 'batch-v2', tag: 'v2', fallback: true }, 'sendBatch too')
  t.same(by('forged'), { value: 'forged', tag: undefined, fallback: false }, 'a forged signature: untagged')
  t.equal(consumer.stats.refused, 1, 'and counted')

  // read the next hop's headers raw
  const raw: KafkaMessage[] = []
  const reader = kafka.consumer({ groupId: unique('raw'), ...quick })
  await reader.connect()
  t.teardown(() => reader.disconnect())
  await reader.subscribe({ topics: [next], fromBeginning: true })
  await reader.run({ eachMessage: async ({ message }) => { raw.push(message) } })
  await waitFor('the next hop\'s four messages', () => raw.length === 4, 30_000)
  const hop = raw.find((m) => String(m.value) === 'after-in-v2') as KafkaMessage
  t.match(String(hop.headers?.['x-flow-tag']), /^v2~\d+~k1~/, 'the next hop carries the lane, signed')
  t.match(String(hop.headers?.baggage), /flowtag\.lane=v2/, 'and the baggage lane')
  t.notMatch(String(hop.headers?.baggage), /tenant=acme/, 'signed trust honours the signed lane only, not the rest of the baggage (as over HTTP)')
  t.equal(raw.find((m) => String(m.value) === 'after-plain')?.headers?.['x-flow-tag'], undefined, 'an untagged message\'s next hop is untagged')

  const { resourceMetrics } = await exporter.collect()
  const text = new PrometheusSerializer().serialize(resourceMetrics)
  t.match(text, /messaging_process_duration(?:_seconds)?_count\{[^}]*flowtag_lane="v2"[^}]*flowtag_mq_fallback="true"[^}]*\} 2/, 'the duration histogram by lane, fallback marked')
  t.match(text, /flowtag_mq_messages_total\{[^}]*flowtag_lane="none"[^}]*flowtag_mq_outcome="handled"[^}]*\} 2/, 'handled counts by lane')
  t.match(text, /flowtag_mq_refused_total\{[^}]*\} 1/, 'refused lane headers')
  t.match(text, /flowtag_mq_lag\{[^}]*messaging_destination_partition_id="/, 'the lag gauge per partition')
})

t.test('a failing handler is counted and retried by kafkajs; the message is not lost', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const topic = unique('orders')
  const { kafka } = await setup(t, brokers, [topic])
  const producer = laneProducer(kafka.producer())
  await producer.connect()
  t.teardown(() => producer.disconnect())
  const consumer = new KafkaLaneConsumer({
    kafka,
    groupId: unique('g'),
    topics: [topic],
    fromBeginning: true,
    service: 'w',
    discovery: new StaticDiscovery({}),
    consumer: { ...quick, retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 200 } }
  })
  let calls = 0
  await consumer.run(async () => {
    if (++calls < 3) throw new Error('flaky')
  })
  t.teardown(() => consumer.stop())
  await producer.send({ topic, messages: [{ value: 'x' }] })
  await waitFor('handled after two failures', () => consumer.stats.lanes.none?.handled === 1, 30_000)
  t.equal(consumer.stats.lanes.none?.failed, 2, 'both failures counted')
})

t.test('strict: a lane\'s messages wait for its consumer, which starts at the earliest', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const topic = unique('orders')
  const { kafka, admin } = await setup(t, brokers, [topic])
  const producer = laneProducer(kafka.producer())
  await producer.connect()
  t.teardown(() => producer.disconnect())
  const groupId = unique('g')
  const discovery = new StaticDiscovery({})
  const common = { kafka, groupId, topics: [topic], service: 'w', stableLane: 'v1', mode: 'strict' as const, discovery, consumer: quick, fromBeginning: true }
  const stable = new KafkaLaneConsumer(common)
  const stableSaw: string[] = []
  await stable.run(({ message }) => { stableSaw.push(String(message.value)) })
  t.teardown(() => stable.stop())
  for (let i = 0; i < 10; i++) {
    if (i % 2 === 0) await producer.send({ topic, messages: [{ key: `k${i % 3}`, value: `u${i}` }] })
    else await runWithFlow({ tag: 'v2', baggage: {} }, () => producer.send({ topic, messages: [{ key: `k${i % 3}`, value: `v${i}` }] }))
  }
  await waitFor('stable handled the untagged', () => stableSaw.length === 5, 30_000)
  await waitFor('stable committed over the v2 messages it skipped', async () => {
    const ends = await admin.fetchTopicOffsets(topic)
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
    // a partition with no message has no committed offset (-1) and its end at 0
    return ends.every((e) => Math.max(0, Number(offsets?.partitions.find((p) => p.partition === e.partition)?.offset)) === Number(e.high))
  }, 30_000)
  t.same(stableSaw.sort(), ['u0', 'u2', 'u4', 'u6', 'u8'], 'stable never handles a strict lane\'s messages')
  t.equal(stable.stats.lanes.v2?.skipped, 5, 'it skipped them, counted')

  const lane = new KafkaLaneConsumer({ ...common, lane: 'v2', fromBeginning: false })
  t.equal(lane.group, `${groupId}.v2`)
  const laneSaw: string[] = []
  await lane.run(({ message }) => { laneSaw.push(String(message.value)) })
  t.teardown(() => lane.stop())
  await waitFor('the v2 consumer handled the messages that waited', () => laneSaw.length === 5, 30_000)
  t.same(laneSaw.sort(), ['v1', 'v3', 'v5', 'v7', 'v9'], 'every waiting v2 message, from the earliest offset')
})

t.test('options and lifecycle errors', async (t) => {
  const kafka = new Kafka({ clientId: 'x', brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING })
  const base = { kafka, groupId: 'g', topics: ['t'], service: 'w', discovery: new StaticDiscovery({}) }
  t.throws(() => new KafkaLaneConsumer({ ...base, topics: [] }), { code: errorCodes.BAD_OPTION, message: /"topics"/ })
  t.throws(() => new KafkaLaneConsumer({ ...base, kafka: {} as never }), { message: /"kafka": expected a kafkajs Kafka/ })
  t.throws(() => new KafkaLaneConsumer({ ...base, consumer: { groupId: 'x' } }), { message: /"consumer": groupId is set per lane/ })
  const c = new KafkaLaneConsumer({ ...base, consumer: { retry: { retries: 0 } } })
  await t.rejects(c.run('no' as never), { code: errorCodes.BAD_OPTION })
  await t.rejects(c.run(async () => {}), { code: errorCodes.BROKER, message: /could not set up consumer group "g"/ })
  await c.stop()
  await t.rejects(c.run(async () => {}), { code: errorCodes.LIFECYCLE, message: /run\(\) after stop\(\)/ })
})

t.test('permissive, in one process: stable stands in while the lane has no live consumer, and leaves when it is back', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const topic = unique('orders')
  const { kafka } = await setup(t, brokers, [topic])
  const producer = laneProducer(kafka.producer())
  await producer.connect()
  t.teardown(() => producer.disconnect())
  const groupId = unique('g')
  const discovery = new StaticDiscovery({})
  const v2Live = (live: boolean) => discovery.set('w', live ? [{ ip: '127.0.0.1', port: 1, metadata: { version: 'v2', 'flowtag.consumer': groupId } }] : [])
  const common = { kafka, groupId, topics: [topic], service: 'w', stableLane: 'v1', discovery, consumer: quick, fromBeginning: true, resyncMs: 200, handoverTimeoutMs: 10_000 }
  const saw: Array<{ by: string, value: string, fallback: boolean }> = []
  const send = (value: string) => runWithFlow({ tag: 'v2', baggage: {} }, () => producer.send({ topic, messages: [{ value }] }))

  v2Live(true)
  const lane = new KafkaLaneConsumer({ ...common, lane: 'v2' })
  await lane.run(({ message, fallback }) => { saw.push({ by: 'v2', value: String(message.value), fallback }) })
  const stable = new KafkaLaneConsumer(common)
  await stable.run(({ message, fallback }) => { saw.push({ by: 'v1', value: String(message.value), fallback }) })
  t.teardown(() => stable.stop())
  await send('a')
  await waitFor('v2 handles a', () => saw.some((s) => s.value === 'a'), 30_000)

  // the lane consumer stops (commits, leaves its group), then its instance goes from the registry
  await lane.stop()
  await send('b')
  v2Live(false)
  await waitFor('stable stands in for v2', () => stable.standingIn.includes('v2'), 30_000)
  await send('c')
  await waitFor('b and c handled by stable', () => ['b', 'c'].every((v) => saw.some((s) => s.value === v)), 30_000)

  // the lane comes back: the stand-in leaves, the new lane consumer resumes from its group's offsets
  v2Live(true)
  await waitFor('the stand-in left', () => stable.standingIn.length === 0, 30_000)
  const back = new KafkaLaneConsumer({ ...common, lane: 'v2' })
  await back.run(({ message, fallback }) => { saw.push({ by: 'v2', value: String(message.value), fallback }) })
  t.teardown(() => back.stop())
  await send('d')
  await waitFor('d handled', () => saw.some((s) => s.value === 'd'), 30_000)
  // sorted: b and c may sit on different partitions, and Kafka orders only within a partition
  t.same([...saw].sort((x, y) => x.value.localeCompare(y.value)), [
    { by: 'v2', value: 'a', fallback: false },
    { by: 'v1', value: 'b', fallback: true },
    { by: 'v1', value: 'c', fallback: true },
    { by: 'v2', value: 'd', fallback: false }
  ], 'each message once, by the lane while it is live and by stable (marked fallback) while it is not')
  t.equal(stable.stats.lanes.v2?.fallback, 2)
})
