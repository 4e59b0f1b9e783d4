// amqplib in lanes against a real RabbitMQ (RABBITMQ_URL), in one process: the channel stamps
// the flow's lane inside a flow and nothing outside, the handler runs in the message's flow,
// forged signatures are handled as untagged and counted, strict lanes wait in their queue for
// their consumer, failing handlers are retried and dead-lettered after maxAttempts.
import t, { type Test } from 'tap'
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib'
import { currentTag, runWithFlow, signTag } from '@flowtag/context'
import { StaticDiscovery } from '@flowtag/nacos'
import { unique, waitFor } from '@flowtag/test-kit'
import { AmqpLaneConsumer, ATTEMPTS_HEADER, laneChannel } from '../src/amqplib.ts'
import { errorCodes } from '../src/index.ts'
import { rabbitUrl } from './fixtures/brokers.ts'

const KEY = { id: 'k1', secret: 'a-secret-of-16-chars' }

async function setup (t: Test, url: string): Promise<{ connection: ChannelModel, raw: ConfirmChannel, exchange: string }> {
  const connection = await amqplib.connect(url)
  t.teardown(() => connection.close().catch(() => {}))
  const raw = await connection.createConfirmChannel()
  const exchange = unique('orders')
  await raw.assertExchange(exchange, 'topic', { durable: false, autoDelete: false })
  return { connection, raw, exchange }
}

const confirmed = (fn: (cb: (err: unknown) => void) => void) => new Promise<void>((resolve, reject) => fn((err) => (err == null ? resolve() : reject(new Error(String(err))))))

t.test('publish in a flow, consume in its flow, signed tags', async (t) => {
  const url = rabbitUrl(t)
  if (url === undefined) return
  const { connection, raw, exchange } = await setup(t, url)
  const channel = laneChannel(raw, { signTag: (lane) => signTag(lane, 600, KEY) })
  const queue = unique('order-events')
  const consumer = new AmqpLaneConsumer({ connection, exchange, routingKey: 'order.*', queue, service: 'w', stableLane: 'v1', discovery: new StaticDiscovery({}), trust: { signed: { keys: [KEY] } } })
  t.equal(consumer.queueName, queue)
  t.equal(consumer.lane, 'v1')
  const seen: Array<{ body: string, tag: string | undefined, fallback: boolean, queue: string }> = []
  await consumer.run(({ message, flow, fallback, queue: q }) => {
    t.equal(flow.tag, currentTag())
    seen.push({ body: message.content.toString(), tag: currentTag(), fallback, queue: q })
  })
  t.teardown(() => consumer.stop())
  await t.rejects(consumer.run(async () => {}), { code: errorCodes.LIFECYCLE })
  const pub = (body: string, headers?: Record<string, string>) => confirmed((cb) => channel.publish(exchange, 'order.created', Buffer.from(body), headers === undefined ? {} : { headers }, cb))
  await pub('plain')
  await runWithFlow({ tag: 'v2', baggage: {} }, () => pub('in-v2'))
  await pub('forged', { 'x-flow-tag': signTag('v2', 600, { id: 'k1', secret: 'not-the-right-secret' }), 'flowtag-lane': 'v2' })
  await waitFor('three messages handled', () => seen.length === 3, 20_000)
  const by = (b: string) => seen.find((s) => s.body === b)
  t.same(by('plain'), { body: 'plain', tag: undefined, fallback: false, queue }, 'outside a flow: untagged, in the stable queue')
  t.same(by('in-v2'), { body: 'in-v2', tag: 'v2', fallback: true, queue }, 'in v2 with no v2 queue yet: the stable queue, handled as fallback')
  t.same(by('forged'), { body: 'forged', tag: undefined, fallback: false, queue }, 'a forged signature: untagged')
  t.equal(consumer.stats.refused, 1, 'and counted')
  t.equal(consumer.stats.lag[queue], 0, 'the lag gauge reads the queue\'s ready messages')
})

t.test('strict: a lane\'s messages wait in its queue for its consumer', async (t) => {
  const url = rabbitUrl(t)
  if (url === undefined) return
  const { connection, raw, exchange } = await setup(t, url)
  const channel = laneChannel(raw)
  const queue = unique('order-events')
  const discovery = new StaticDiscovery({})
  const common = { connection, exchange, queue, service: 'w', stableLane: 'v1', mode: 'strict' as const, discovery }
  const stable = new AmqpLaneConsumer(common)
  const stableSaw: string[] = []
  await stable.run(({ message }) => { stableSaw.push(message.content.toString()) })
  t.teardown(() => stable.stop())
  for (let i = 0; i < 6; i++) {
    const send = () => confirmed((cb) => channel.publish(exchange, 'x', Buffer.from(`m${i}`), {}, cb))
    if (i % 2 === 0) await send()
    else await runWithFlow({ tag: 'v2', baggage: {} }, send)
  }
  // the first v2 message reaches the stable queue (no v2 queue yet): stable declares the v2 queue
  // and forwards it there; the ones published after that are routed to it by the broker
  await waitFor('stable handled the untagged', () => stableSaw.length === 3, 20_000)
  const probe = await connection.createChannel()
  t.teardown(() => probe.close().catch(() => {}))
  await waitFor('the v2 messages wait in the v2 queue', async () => (await probe.checkQueue(`${queue}.v2`)).messageCount === 3, 20_000)
  t.same(stableSaw.sort(), ['m0', 'm2', 'm4'], 'stable never handles a strict lane\'s messages')
  t.ok((stable.stats.lanes.v2?.skipped ?? 0) >= 1, 'it forwarded those that reached its queue')
  const lane = new AmqpLaneConsumer({ ...common, lane: 'v2' })
  t.equal(lane.queueName, `${queue}.v2`)
  const laneSaw: string[] = []
  await lane.run(({ message }) => { laneSaw.push(message.content.toString()) })
  t.teardown(() => lane.stop())
  await waitFor('the v2 consumer handled what waited', () => laneSaw.length === 3, 20_000)
  // m1 reached the stable queue before the v2 queue existed and was forwarded after m3/m5 were
  // routed: declare lane queues before their messages are produced (knownLanes) to keep order
  t.same(laneSaw.sort(), ['m1', 'm3', 'm5'], 'every waiting v2 message')
  t.same(stable.draining, [], 'stable drains nothing in strict mode')
})

t.test('strict with knownLanes: the lane queue exists from the start, its messages wait in order', async (t) => {
  const url = rabbitUrl(t)
  if (url === undefined) return
  const { connection, raw, exchange } = await setup(t, url)
  const channel = laneChannel(raw)
  const queue = unique('order-events')
  const common = { connection, exchange, queue, service: 'w', stableLane: 'v1', mode: 'strict' as const, discovery: new StaticDiscovery({}), knownLanes: ['v2'] }
  const stable = new AmqpLaneConsumer(common)
  await stable.run(() => {})
  t.teardown(() => stable.stop())
  for (let i = 0; i < 6; i++) await runWithFlow({ tag: 'v2', baggage: {} }, () => confirmed((cb) => channel.publish(exchange, 'x', Buffer.from(`m${i}`), {}, cb)))
  const lane = new AmqpLaneConsumer({ ...common, lane: 'v2' })
  const laneSaw: string[] = []
  await lane.run(({ message }) => { laneSaw.push(message.content.toString()) })
  t.teardown(() => lane.stop())
  await waitFor('the v2 consumer handled what waited', () => laneSaw.length === 6, 20_000)
  t.same(laneSaw, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'], 'in order')
  t.equal(stable.stats.lanes.v2, undefined, 'none went through the stable queue')
})

t.test('permissive: a message a lane consumer forwards to a lane with no live consumer is handled by stable, not parked', async (t) => {
  const url = rabbitUrl(t)
  if (url === undefined) return
  const { connection, raw, exchange } = await setup(t, url)
  const queue = unique('order-events')
  const discovery = new StaticDiscovery({ w: [{ ip: '127.0.0.1', port: 1, metadata: { version: 'v2', 'flowtag.consumer': queue } }] })
  const common = { connection, exchange, queue, service: 'w', stableLane: 'v1', discovery }
  const saw: Array<{ by: string, body: string, tag: string | undefined, fallback: boolean }> = []
  const stable = new AmqpLaneConsumer(common)
  await stable.run(({ message, flow, fallback }) => { saw.push({ by: 'v1', body: message.content.toString(), tag: flow.tag, fallback }) })
  t.teardown(() => stable.stop())
  const lane = new AmqpLaneConsumer({ ...common, lane: 'v2' })
  await lane.run(({ message, flow, fallback }) => { saw.push({ by: 'v2', body: message.content.toString(), tag: flow.tag, fallback }) })
  t.teardown(() => lane.stop())
  // routed to the v2 queue by its routing header, but in lane v3 (no v3 consumer): a producer that
  // sets the headers by hand, or a mismatch; v2 forwards it, and nobody reads a v3 queue
  await confirmed((cb) => raw.publish(exchange, 'x', Buffer.from('mismatched'), { headers: { 'flowtag-lane': 'v2', 'x-flow-tag': 'v3' } }, cb))
  await confirmed((cb) => raw.publish(exchange, 'x', Buffer.from('in-v2'), { headers: { 'flowtag-lane': 'v2', 'x-flow-tag': 'v2' } }, cb))
  await waitFor('both handled', () => saw.length === 2, 20_000)
  t.same(saw.find((s) => s.body === 'mismatched'), { by: 'v1', body: 'mismatched', tag: 'v3', fallback: true }, 'stable handles the v3 message, marked fallback')
  t.same(saw.find((s) => s.body === 'in-v2'), { by: 'v2', body: 'in-v2', tag: 'v2', fallback: false })
  t.equal(lane.stats.lanes.v3?.skipped, 1, 'the v2 consumer forwarded it')
})

t.test('a failing handler: retried with an attempts header, dead-lettered after maxAttempts', async (t) => {
  const url = rabbitUrl(t)
  if (url === undefined) return
  const { connection, raw, exchange } = await setup(t, url)
  const dlx = unique('dead')
  await raw.assertExchange(dlx, 'fanout', { durable: false })
  const dead = unique('dead-q')
  await raw.assertQueue(dead, { durable: false })
  await raw.bindQueue(dead, dlx, '')
  const queue = unique('order-events')
  const warned: Array<{ err?: Error, msg: string }> = []
  const logger = { debug () {}, warn: (o: { err?: Error }, msg: string) => { warned.push({ err: o.err, msg }) } }
  const consumer = new AmqpLaneConsumer({ connection, exchange, queue, service: 'w', discovery: new StaticDiscovery({}), deadLetterExchange: dlx, maxAttempts: 3, logger })
  const attempts: Record<string, number> = {}
  await consumer.run(({ message }) => {
    const body = message.content.toString()
    attempts[body] = (attempts[body] ?? 0) + 1
    if (body.startsWith('poison') || attempts[body] === 1) throw new Error(`fails: ${body}`)
  })
  t.teardown(() => consumer.stop())
  await confirmed((cb) => raw.publish(exchange, 'x', Buffer.from('flaky'), {}, cb))
  await confirmed((cb) => raw.publish(exchange, 'x', Buffer.from('poison'), {}, cb))
  await confirmed((cb) => raw.publish(exchange, 'x', Buffer.from('poison-bad-count'), { headers: { [ATTEMPTS_HEADER]: 'many' } }, cb))
  const probe = await connection.createChannel()
  t.teardown(() => probe.close().catch(() => {}))
  const deadMsgs: Array<{ body: string, attempts: unknown }> = []
  await waitFor('both poison messages dead-lettered', async () => {
    const m = await probe.get(dead, { noAck: true })
    if (m !== false) deadMsgs.push({ body: m.content.toString(), attempts: m.properties.headers?.[ATTEMPTS_HEADER] })
    return deadMsgs.length === 2
  }, 20_000)
  t.same(deadMsgs.find((d) => d.body === 'poison'), { body: 'poison', attempts: 2 }, 'after 3 attempts (the header counts the retries published)')
  t.same(deadMsgs.find((d) => d.body === 'poison-bad-count'), { body: 'poison-bad-count', attempts: 2 }, 'a malformed count restarts at 0: it cannot defeat maxAttempts')
  t.same(attempts, { flaky: 2, poison: 3, 'poison-bad-count': 3 }, 'a flaky message succeeds on its second attempt')
  t.equal(consumer.stats.lanes.none?.failed, 7, 'every failure counted')
  const failures = warned.filter((w) => /message handler failed/.test(w.msg))
  t.equal(failures.length, 7, 'and each logged with its error (amqplib logs nothing itself)')
  t.same([...new Set(failures.map((w) => w.err?.message))].sort(), ['fails: flaky', 'fails: poison', 'fails: poison-bad-count'])
})

t.test('options and setup errors', async (t) => {
  const url = rabbitUrl(t)
  if (url === undefined) return
  const base = { exchange: 'x', queue: 'q', service: 'w', discovery: new StaticDiscovery({}) }
  t.throws(() => new AmqpLaneConsumer({ ...base, connection: {} as never }), { code: errorCodes.BAD_OPTION, message: /"connection"/ })
  const connection = await amqplib.connect(url)
  t.teardown(() => connection.close().catch(() => {}))
  t.throws(() => new AmqpLaneConsumer({ ...base, connection, prefetch: 0 }), { message: /"prefetch"/ })
  const c = new AmqpLaneConsumer({ ...base, connection, exchange: unique('missing-exchange') })
  await t.rejects(c.run('no' as never), { code: errorCodes.BAD_OPTION })
  await t.rejects(c.run(async () => {}), { code: errorCodes.BROKER, message: /could not set up queue "q"/ })
  await c.stop()
  await t.rejects(c.run(async () => {}), { code: errorCodes.LIFECYCLE, message: /run\(\) after stop\(\)/ })
  const { raw, exchange } = await setup(t, url)
  void raw
  const unreachable = { instances: async () => { throw new Error('Nacos unreachable and no snapshot') }, subscribe: () => () => {} }
  const d = new AmqpLaneConsumer({ ...base, connection, exchange, queue: unique('q'), discovery: unreachable })
  await t.rejects(d.run(async () => {}), { code: errorCodes.DISCOVERY, message: /could not read the consumers of service "w"/ }, 'Nacos down at start: a discovery error, not a broker one')
  await d.stop()
})
