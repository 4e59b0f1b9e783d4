// The permissive handover against a real RabbitMQ (RABBITMQ_URL) and the Nacos dev server
// (fixtures/handover.ts): SIGKILL, return and graceful stop of the lane consumer lose nothing,
// misroute nothing, and leave no message stranded in the lane's queue.
import t from 'tap'
import amqplib from 'amqplib'
import { runWithFlow } from '@flowtag/context'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { unique, waitFor } from '@flowtag/test-kit'
import { laneChannel } from '../src/amqplib.ts'
import { rabbitUrl } from './fixtures/brokers.ts'
import { handoverScenario } from './fixtures/handover.ts'

t.test('amqplib, permissive: SIGKILL, return and graceful stop of the lane consumer', async (t) => {
  const url = rabbitUrl(t)
  if (url === undefined) return
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const exchange = unique('orders')
  const queue = unique('order-events')
  const connection = await amqplib.connect(url)
  t.teardown(() => connection.close())
  const raw = await connection.createConfirmChannel()
  await raw.assertExchange(exchange, 'topic', { durable: true })
  const channel = laneChannel(raw)
  const publish = (id: string, headers?: Record<string, string>) => new Promise<void>((resolve, reject) => {
    channel.publish(exchange, 'order.created', Buffer.from(id), { persistent: true, ...(headers === undefined ? {} : { headers }) }, (err) => (err == null ? resolve() : reject(new Error(String(err)))))
  })

  const figures = await handoverScenario(t, {
    worker: new URL('./fixtures/amqp-worker.ts', import.meta.url).pathname,
    env: { RABBITMQ_URL: url, NACOS_ADDR: `127.0.0.1:${dev.port}`, EXCHANGE: exchange, QUEUE: queue, SERVICE: unique('order-worker') },
    publish: async (id, kind) => {
      if (kind === 'v2') await runWithFlow({ tag: 'v2', baggage: {} }, () => publish(id))
      // routed to the v2 queue by its routing header, refused by its consumer: back to stable
      else if (kind === 'malformed') await publish(id, { 'x-flow-tag': 'v2 forged!', 'flowtag-lane': 'v2' })
      else await publish(id)
    }
  })
  const check = await connection.createChannel()
  t.teardown(() => check.close().catch(() => {}))
  await waitFor('the lane queue is empty', async () => (await check.checkQueue(`${queue}.v2`)).messageCount === 0 && (await check.checkQueue(queue)).messageCount === 0, 30_000)
  t.pass('no message stranded in the lane queue or the stable queue')
  t.comment(`rabbitmq handover figures: ${JSON.stringify(figures)}`)
})
