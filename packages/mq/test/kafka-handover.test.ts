// The permissive handover against a real Kafka (KAFKA_BROKERS) and the Nacos dev server
// (fixtures/handover.ts), for both Kafka clients: SIGKILL, return and graceful stop of the lane
// consumer lose nothing, misroute nothing, and leave no group lagging behind other lanes' messages.
import t, { type Test } from 'tap'
import { Kafka, logLevel } from 'kafkajs'
import { Producer } from '@platformatic/kafka'
import { runWithFlow } from '@flowtag/context'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { unique, waitFor } from '@flowtag/test-kit'
import { laneProducer } from '../src/kafkajs.ts'
import { laneProducer as platformaticLaneProducer } from '../src/platformatic-kafka.ts'
import { kafkaBrokers } from './fixtures/brokers.ts'
import { handoverScenario, type Kind } from './fixtures/handover.ts'

type Send = (topic: string, message: { key: string, value: string, headers?: Record<string, string> }) => Promise<unknown>

/** A producer of `client` (its lane producer), and how to close it. */
async function producerOf (client: 'kafkajs' | 'platformatic', kafka: Kafka, brokers: string[]): Promise<{ send: Send, close: () => Promise<unknown> }> {
  if (client === 'kafkajs') {
    const p = laneProducer(kafka.producer())
    await p.connect()
    return { send: (topic, m) => p.send({ topic, messages: [m] }), close: () => p.disconnect() }
  }
  const p = platformaticLaneProducer(new Producer({ clientId: 'handover-test', bootstrapBrokers: brokers }))
  const buf = (s: string) => Buffer.from(s)
  return {
    send: (topic, m) => p.send({ messages: [{ topic, key: buf(m.key), value: buf(m.value), headers: new Map(Object.entries(m.headers ?? {}).map(([k, v]) => [buf(k), buf(v)])) }] }),
    close: () => p.close()
  }
}

async function handover (t: Test, client: 'kafkajs' | 'platformatic'): Promise<void> {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const topic = unique('orders')
  const group = unique('order-events')
  const kafka = new Kafka({ clientId: 'handover-test', brokers, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
  const producer = await producerOf(client, kafka, brokers)
  t.teardown(() => producer.close())

  const figures = await handoverScenario(t, {
    worker: new URL('./fixtures/kafka-worker.ts', import.meta.url).pathname,
    env: { CLIENT: client, KAFKA_BROKERS: brokers.join(','), NACOS_ADDR: `127.0.0.1:${dev.port}`, GROUP: group, TOPIC: topic, SERVICE: unique('order-worker') },
    publish: async (id: string, kind: Kind, n: number) => {
      const message = { key: `user-${n % 17}`, value: id }
      if (kind === 'v2') await runWithFlow({ tag: 'v2', baggage: {} }, () => producer.send(topic, message))
      else if (kind === 'malformed') await producer.send(topic, { ...message, headers: { 'x-flow-tag': 'v2 forged!' } })
      else await producer.send(topic, message)
    }
  })
  // lag: both groups committed over everything, including what they skipped
  await waitFor('both groups committed to the end of the log', async () => {
    const ends = await admin.fetchTopicOffsets(topic)
    for (const g of [group, `${group}.v2`]) {
      const [offsets] = await admin.fetchOffsets({ groupId: g, topics: [topic] })
      for (const e of ends) if (offsets?.partitions.find((p) => p.partition === e.partition)?.offset !== e.high) return false
    }
    return true
  }, 60_000)
  t.pass('no group lags behind because of other lanes\' messages')
  t.comment(`${client} handover figures: ${JSON.stringify(figures)}`)
}

t.test('kafkajs, permissive: SIGKILL, return and graceful stop of the lane consumer', (t) => handover(t, 'kafkajs'))
t.test('@platformatic/kafka, permissive: SIGKILL, return and graceful stop of the lane consumer', (t) => handover(t, 'platformatic'))
