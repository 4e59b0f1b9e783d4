// The permissive handover against a real Kafka (KAFKA_BROKERS) and the Nacos dev server
// (fixtures/handover.ts): SIGKILL, return and graceful stop of the lane consumer lose nothing,
// misroute nothing, and leave no group lagging behind other lanes' messages.
import t from 'tap'
import { Kafka, logLevel } from 'kafkajs'
import { runWithFlow } from '@flowtag/context'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { unique, waitFor } from '@flowtag/test-kit'
import { laneProducer } from '../src/kafkajs.ts'
import { kafkaBrokers } from './fixtures/brokers.ts'
import { handoverScenario } from './fixtures/handover.ts'

t.test('kafkajs, permissive: SIGKILL, return and graceful stop of the lane consumer', async (t) => {
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
  const producer = laneProducer(kafka.producer())
  await producer.connect()
  t.teardown(() => producer.disconnect())

  const figures = await handoverScenario(t, {
    worker: new URL('./fixtures/kafka-worker.ts', import.meta.url).pathname,
    env: { KAFKA_BROKERS: brokers.join(','), NACOS_ADDR: `127.0.0.1:${dev.port}`, GROUP: group, TOPIC: topic, SERVICE: unique('order-worker') },
    publish: async (id, kind, n) => {
      const message = { key: `user-${n % 17}`, value: id }
      if (kind === 'v2') await runWithFlow({ tag: 'v2', baggage: {} }, () => producer.send({ topic, messages: [message] }))
      else if (kind === 'malformed') await producer.send({ topic, messages: [{ ...message, headers: { 'x-flow-tag': 'v2 forged!' } }] })
      else await producer.send({ topic, messages: [message] })
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
  t.comment(`kafka handover figures: ${JSON.stringify(figures)}`)
})
