// A shadow flow (a mirrored copy) never produces: every lane producer resolves without sending, counted.
import t from 'tap'
import type { Channel } from 'amqplib'
import { runWithFlow } from '@flowtag/context'
import { laneProducer } from '../src/kafkajs.ts'
import { laneProducer as platformaticProducer } from '../src/platformatic-kafka.ts'
import { laneChannel } from '../src/amqplib.ts'
import { FlowReader, laneHeaders, shadowSuppressedCount } from '../src/index.ts'

const shadow = { tag: 'v3', shadow: true as const, baggage: {} }
const lane = { tag: 'v3', baggage: {} }

t.test('kafkajs: send and sendBatch in a shadow flow send nothing; in a plain flow they do', async (t) => {
  const sent: unknown[] = []
  const fake = { send: async (r: unknown) => { sent.push(r); return [{ ok: 1 }] }, sendBatch: async (b: unknown) => { sent.push(b); return [{ ok: 1 }] }, transaction: async () => fake }
  const p = laneProducer(fake as never)
  const before = shadowSuppressedCount()
  t.same(await runWithFlow(shadow, () => p.send({ topic: 'x', messages: [{ value: 'a' }, { value: 'b' }] })), [])
  t.same(await runWithFlow(shadow, () => p.sendBatch({ topicMessages: [{ topic: 'x', messages: [{ value: 'c' }] }] })), [])
  t.equal(sent.length, 0, 'nothing reached the client')
  t.equal(shadowSuppressedCount() - before, 3)
  await runWithFlow(lane, () => p.send({ topic: 'x', messages: [{ value: 'a' }] }))
  t.equal(sent.length, 1, 'a plain flow produces')
})

t.test('@platformatic/kafka: promise and callback forms', async (t) => {
  const sent: unknown[] = []
  const fake = { send: async (o: unknown) => { sent.push(o); return { offsets: [] } } }
  const p = platformaticProducer(fake)
  t.same(await runWithFlow(shadow, () => (p.send as (o: unknown) => Promise<unknown>)({ messages: [{ topic: 'x', value: 'a' }] })), {})
  const viaCallback = await new Promise((resolve) => runWithFlow(shadow, () => (p.send as (...a: unknown[]) => void)({ messages: [{ topic: 'x', value: 'a' }] }, (err: unknown, r: unknown) => resolve([err, r]))))
  t.same(viaCallback, [null, {}])
  t.equal(sent.length, 0)
})

t.test('amqplib: publish and sendToQueue are not published; a confirm callback is answered', async (t) => {
  const sent: unknown[] = []
  const fake = { publish: (...a: unknown[]) => { sent.push(a); return true }, sendToQueue: (...a: unknown[]) => { sent.push(a); return true } }
  const ch = laneChannel(fake as unknown as Pick<Channel, 'publish' | 'sendToQueue'>)
  t.equal(runWithFlow(shadow, () => ch.publish('ex', 'k', Buffer.from('a'))), true)
  t.equal(runWithFlow(shadow, () => ch.sendToQueue('q', Buffer.from('a'))), true)
  const confirmed = await new Promise((resolve) => runWithFlow(shadow, () => (ch.publish as (...a: unknown[]) => boolean)('ex', 'k', Buffer.from('a'), {}, resolve)))
  t.equal(confirmed, null)
  t.equal(sent.length, 0)
  runWithFlow(lane, () => ch.publish('ex', 'k', Buffer.from('a')))
  t.equal(sent.length, 1)
})

t.test('the marker is a lane header: written by laneHeaders, read by a consumer under its trust', async (t) => {
  t.same(laneHeaders({}, shadow), { 'x-flow-tag': 'v3', baggage: 'flowtag.lane=v3,flowtag.shadow=1', 'x-flow-shadow': '1' })
  const reader = new FlowReader('always', false)
  t.equal(reader.read({ 'x-flow-tag': Buffer.from('v3'), 'X-Flow-Shadow': Buffer.from('1') }).flow.shadow, true)
  t.equal(new FlowReader('never', false).read({ 'x-flow-tag': 'v3', 'x-flow-shadow': '1' }).flow.shadow, undefined, 'not trusted: not a shadow')
})
