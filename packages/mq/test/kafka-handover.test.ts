// The permissive handover against a real Kafka and the Nacos dev server: a stable consumer
// process (v1) and a lane consumer process (v2) of one service, messages of both lanes produced
// all along. The v2 consumer is SIGKILLed mid-stream, comes back, then stops gracefully. Every
// message must be handled at least once, v2's only by v2 while a v2 consumer consumes, untagged
// ones only by v1; duplicates and the handover windows are measured and printed.
import { createInterface } from 'node:readline'
import type { ChildProcess } from 'node:child_process'
import t from 'tap'
import { Kafka, logLevel } from 'kafkajs'
import { runWithFlow } from '@flowtag/context'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { startNode, unique, waitFor } from '@flowtag/test-kit'
import { laneProducer } from '../src/kafkajs.ts'
import { kafkaBrokers } from './fixtures/brokers.ts'

const worker = new URL('./fixtures/kafka-worker.ts', import.meta.url).pathname

interface Ev { ev: string, t: number, id?: string, lane?: string | null, fallback?: boolean, tag?: string | null, by?: string, proc: string, live?: string }

t.test('permissive: SIGKILL, return and graceful stop of the lane consumer lose nothing', async (t) => {
  const brokers = kafkaBrokers(t)
  if (brokers === undefined) return
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const topic = unique('orders')
  const group = unique('order-events')
  const service = unique('order-worker')
  const kafka = new Kafka({ clientId: 'handover-test', brokers, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  t.teardown(() => admin.disconnect())
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
  const producer = laneProducer(kafka.producer())
  await producer.connect()
  t.teardown(() => producer.disconnect())

  const events: Ev[] = []
  const procs = new Map<string, ChildProcess>()
  let port = 41000
  const spawnWorker = (lane: string, name: string): ChildProcess => {
    const child = startNode(t, worker, {
      env: { KAFKA_BROKERS: brokers.join(','), NACOS_ADDR: `127.0.0.1:${dev.port}`, GROUP: group, TOPIC: topic, SERVICE: service, LANE: lane, PORT: String(port++) }
    })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { process.stderr.write(`[${name}] ${d}`) })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        events.push({ ...(JSON.parse(line) as Ev), proc: name })
      } catch {
        process.stderr.write(`[${name}] ${line}\n`)
      }
    })
    procs.set(name, child)
    return child
  }
  const running = (name: string) => waitFor(`${name} running`, () => events.find((e) => e.proc === name && e.ev === 'running'), 60_000)
  const handledBy = (name: string, lane: string | null, fallback?: boolean) =>
    events.filter((e) => e.ev === 'handled' && e.proc === name && e.lane === lane && (fallback === undefined || e.fallback === fallback))

  spawnWorker('v1', 'S')
  await running('S')
  spawnWorker('v2', 'L1')
  await running('L1')

  // produce all along: every third message untagged, the others in lane v2
  const produced: Array<{ id: string, lane: string | null }> = []
  let producing = true
  const loop = (async () => {
    for (let n = 0; producing; n++) {
      const id = `m${n}`
      const lane = n % 3 === 0 ? null : 'v2'
      const send = () => producer.send({ topic, messages: [{ key: `user-${n % 17}`, value: id }] })
      if (lane === null) await send()
      else await runWithFlow({ tag: lane, baggage: {} }, send)
      produced.push({ id, lane })
      await new Promise((resolve) => setTimeout(resolve, 15))
    }
  })()

  await waitFor('L1 handles v2 messages', () => handledBy('L1', 'v2').length >= 30, 60_000)
  // SIGKILL mid-stream
  const killedAt = Date.now()
  killWorker('L1', 'SIGKILL')
  const firstFallback = await waitFor('stable stands in for v2', () => events.find((e) => e.ev === 'handled' && e.proc === 'S' && e.lane === 'v2' && e.t >= killedAt), 60_000)
  const killWindow = firstFallback.t - killedAt

  spawnWorker('v2', 'L2')
  const l2Started = Date.now()
  await running('L2')
  const l2First = await waitFor('L2 handles v2 messages', () => events.find((e) => e.ev === 'handled' && e.proc === 'L2' && e.lane === 'v2'), 60_000)
  const returnWindow = l2First.t - l2Started
  await waitFor('L2 handles more', () => handledBy('L2', 'v2').length >= 30, 60_000)

  const termAt = Date.now()
  killWorker('L2', 'SIGTERM')
  await waitFor('L2 stopped', () => events.find((e) => e.proc === 'L2' && e.ev === 'stopped'), 60_000)
  const afterStop = await waitFor('stable stands in again', () => events.find((e) => e.ev === 'handled' && e.proc === 'S' && e.lane === 'v2' && e.t >= termAt), 60_000)
  const stopWindow = afterStop.t - termAt
  await new Promise((resolve) => setTimeout(resolve, 1000))
  producing = false
  await loop

  const handled = () => new Set(events.filter((e) => e.ev === 'handled').map((e) => e.id))
  await waitFor('every produced message handled', () => produced.every((p) => handled().has(p.id)), 90_000)
  const all = events.filter((e) => e.ev === 'handled')
  const counts = new Map<string, number>()
  for (const e of all) counts.set(e.id as string, (counts.get(e.id as string) ?? 0) + 1)
  const duplicates = [...counts.values()].filter((c) => c > 1).length
  const lanes = new Map(produced.map((p) => [p.id, p.lane]))

  t.equal(produced.filter((p) => !handled().has(p.id)).length, 0, `all ${produced.length} messages handled at least once`)
  t.ok(all.every((e) => e.lane === (lanes.get(e.id as string) ?? null)), 'every handler saw its message\'s lane')
  t.ok(all.every((e) => e.tag === e.lane), 'every handler ran inside its message\'s flow (currentTag)')
  t.equal(all.filter((e) => e.proc !== 'S' && e.lane !== 'v2').length, 0, 'the v2 consumers handled nothing but v2')
  t.equal(all.filter((e) => e.proc === 'S' && e.lane === null && e.fallback).length, 0, 'untagged messages are not fallbacks')
  // misrouted: v2 handled by stable while a v2 consumer was consuming (from its running line to its death)
  const l2Running = events.find((e) => e.proc === 'L2' && e.ev === 'running')!.t
  const l1Running = events.find((e) => e.proc === 'L1' && e.ev === 'running')!.t
  const misrouted = all.filter((e) => e.proc === 'S' && e.lane === 'v2' && ((e.t > l1Running && e.t < killedAt) || (e.t > l2Running && e.t < termAt)))
  t.equal(misrouted.length, 0, 'no v2 message handled by stable while a v2 consumer consumed')

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
  const figures = { produced: produced.length, handled: all.length, duplicates, killWindowMs: killWindow, returnWindowMs: returnWindow, stopWindowMs: stopWindow }
  t.comment(`kafka handover figures: ${JSON.stringify(figures)}`)
  killWorker('S', 'SIGTERM')
  await waitFor('S stopped', () => events.find((e) => e.proc === 'S' && e.ev === 'stopped'), 60_000)

  function killWorker (name: string, signal: NodeJS.Signals): void {
    const child = procs.get(name)
    child?.kill(signal)
  }
})
