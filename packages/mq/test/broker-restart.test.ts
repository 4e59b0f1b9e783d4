// The real brokers restarted under load (fixtures/restart.ts), under the consumers of each
// client (kafkajs, @platformatic/kafka, amqplib). The restart commands come from the environment,
// as the brokers' addresses do: KAFKA_RESTART_CMD and RABBITMQ_RESTART_CMD (scripts/test sets them
// to the tools' stop.sh, then start.sh --keep-data, for the brokers it started). Missing, the
// suite fails loudly.
import t, { type Test } from 'tap'
import { Kafka, logLevel } from 'kafkajs'
import amqplib from 'amqplib'
import { runWithFlow } from '@flowtag/context'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { unique } from '@flowtag/test-kit'
import { laneProducer } from '../src/kafkajs.ts'
import { laneChannel } from '../src/amqplib.ts'
import { kafkaBrokers, rabbitUrl } from './fixtures/brokers.ts'
import { restartScenario } from './fixtures/restart.ts'

function command (t: Test, name: string): string | undefined {
  const v = process.env[name]
  if (v === undefined || v === '') t.fail(`${name} is not set: this suite restarts the real broker with it (scripts/test sets it)`)
  return v === '' ? undefined : v
}

/** The Kafka broker restarted under a stable and a lane consumer of `client` (the producer is kafkajs' lane producer for both). */
async function kafkaRestart (t: Test, client: 'kafkajs' | 'platformatic'): Promise<void> {
  const brokers = kafkaBrokers(t)
  const restart = command(t, 'KAFKA_RESTART_CMD')
  if (brokers === undefined || restart === undefined) return
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const topic = unique('orders')
  const kafka = new Kafka({ clientId: 'restart-test', brokers, logLevel: logLevel.NOTHING, retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 500 } })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })
  await admin.disconnect()
  const producer = laneProducer(kafka.producer())
  await producer.connect()
  t.teardown(() => producer.disconnect().catch(() => {}))
  const figures = await restartScenario(t, {
    worker: new URL('./fixtures/kafka-worker.ts', import.meta.url).pathname,
    env: { CLIENT: client, KAFKA_BROKERS: brokers.join(','), NACOS_ADDR: `127.0.0.1:${dev.port}`, GROUP: unique('g'), TOPIC: topic, SERVICE: unique('w') },
    restart,
    publish: async (id, lane) => {
      const send = () => producer.send({ topic, messages: [{ key: id, value: id }] })
      await (lane ? runWithFlow({ tag: 'v2', baggage: {} }, send) : send())
    }
  })
  t.comment(`${client}: kafka restart figures: ${JSON.stringify(figures)}`)
}

t.test('kafkajs: the broker restarts under load', (t) => kafkaRestart(t, 'kafkajs'))
t.test('@platformatic/kafka: the broker restarts under load', (t) => kafkaRestart(t, 'platformatic'))

t.test('amqplib: the broker restarts under load', async (t) => {
  const url = rabbitUrl(t)
  const restart = command(t, 'RABBITMQ_RESTART_CMD')
  if (url === undefined || restart === undefined) return
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const exchange = unique('orders')
  const connection = await amqplib.connect(url, { recovery: { initialDelay: 100, maxDelay: 1000 } })
  t.teardown(() => connection.close().catch(() => {}))
  let channel = laneChannel(await connection.createConfirmChannel())
  await channel.assertExchange(exchange, 'topic', { durable: true })
  const figures = await restartScenario(t, {
    worker: new URL('./fixtures/amqp-worker.ts', import.meta.url).pathname,
    env: { RABBITMQ_URL: url, NACOS_ADDR: `127.0.0.1:${dev.port}`, EXCHANGE: exchange, QUEUE: unique('q'), SERVICE: unique('w') },
    restart,
    publish: async (id, lane) => {
      const send = () => new Promise<void>((resolve, reject) => {
        try {
          channel.publish(exchange, 'x', Buffer.from(id), { persistent: true }, (err) => (err == null ? resolve() : reject(new Error(String(err)))))
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)))
        }
      })
      try {
        await (lane ? runWithFlow({ tag: 'v2', baggage: {} }, send) : send())
      } catch (err) {
        // the channel died with the broker: a new one once the connection has recovered
        channel = laneChannel(await connection.createConfirmChannel())
        throw err
      }
    }
  })
  t.comment(`rabbitmq restart figures: ${JSON.stringify(figures)}`)
})

// A client of a broker that was restarted under it can keep a socket or a reconnect timer after
// close (amqplib's recovering connection, kafkajs's retries), which would hold this process open
// until tap's timeout although every assertion is in: once the tests are done, leave.
t.teardown(() => { setTimeout(() => process.exit(), 1000).unref() })
