// The chaos suite's message lanes: the demo topology with its async hop (gateway → order-service
// v1/v2 → Kafka order-created → notification-service v1/v2 → user-service v1/v2) under steady
// orders, while the v2 consumer is SIGKILLed and started again, then while the broker restarts
// (KAFKA_RESTART_CMD: stop, then start on its data). Every order's event is judged by id: lost
// (never handled), misrouted (handled outside its lane while its lane's consumer was live, or
// its handler's user-service call left the lane), handled twice (counted: at least once). Figures
// go to RELIABILITY.md. A real Kafka is needed (KAFKA_BROKERS; scripts/test starts one); against
// the dev server, or the real Nacos NACOS_SERVER_ADDR names (in a namespace of its own).
import { execFile } from 'node:child_process'
import { loadavg } from 'node:os'
import { promisify } from 'node:util'
import { NacosClient } from '@flowtag/nacos'
import { unique } from '@flowtag/test-kit'
import t from 'tap'
import { ensureTopic, EventLog, judge, OrderLoad, type Placed } from '../../src/async-hop.ts'
import { startApp, waitForLog, type AppProcess } from '../../src/cluster.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from '../../src/rulesets.ts'
import { devNacos, realNacos } from './nacos-process.ts'
import { stamp, writeSection, type Row } from './report.ts'
import { until } from './probes.ts'

const run = promisify(execFile)
const brokers = process.env.KAFKA_BROKERS ?? ''
const restart = process.env.KAFKA_RESTART_CMD ?? ''
if (brokers === '' || restart === '') {
  const why = 'KAFKA_BROKERS and KAFKA_RESTART_CMD must name a real Kafka and how to restart it (scripts/test sets both)'
  if (process.env.CI === 'true') t.fail(`message-lane chaos: ${why}`)
  else t.comment(`message-lane chaos NOT run: ${why}`)
} else {
  await chaos()
}

async function chaos (): Promise<void> {
  const real = process.env.NACOS_SERVER_ADDR
  const nacos = real === undefined || real === '' ? await devNacos() : realNacos(real)
  const namespace = `kafka-chaos-${Date.now().toString(36)}`
  const admin = new NacosClient({ serverAddr: nacos.addr, namespace })
  const topic = unique('order-created')
  const log = new EventLog()
  const apps: AppProcess[] = []
  // a start that fails rejects this file's top level before tap's teardown: never leave the others running
  process.once('exit', () => { for (const a of apps) a.child.kill('SIGKILL') })
  const started = Date.now()
  t.teardown(async () => {
    await Promise.all(apps.map((a) => a.stop('SIGKILL')))
    await admin.close()
    await nacos.close()
  })
  const env = { NACOS_NAMESPACE: namespace, KAFKA_BROKERS: brokers, ORDER_EVENTS_TOPIC: topic, KAFKA_GROUP: unique('notification-service'), DRAIN_MS: '300' }
  const start = async (name: string, version: string): Promise<AppProcess> => {
    const app = await startApp(name, version, { nacosAddr: nacos.addr, env, onLog: log.onLog, listenTimeoutMs: 60_000 })
    apps.push(app)
    if (name === 'notification-service') await waitForLog(app, '"msg":"consuming"')
    return app
  }

  await ensureTopic(brokers, topic)
  await admin.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(canaryRuleSet(1, 0)), 'json')
  // two at a time: faster than one after another, and no start stampede on a busy machine
  for (const s of ['user-service', 'inventory-service', 'order-service'] as const) await Promise.all([start(s, 'v1'), start(s, 'v2')])
  await start('notification-service', 'v1')
  const [first, gateway] = await Promise.all([start('notification-service', 'v2'), start('gateway', 'v1')])
  let consumerV2 = first
  await until('every instance registered', async () => (await admin.naming.instances('notification-service')).length === 2 && (await admin.naming.instances('order-service')).length === 2 && (await admin.naming.instances('user-service')).length === 2)

  const load = new OrderLoad(gateway.url, 'c')
  load.start(2, 30)
  const handledBy = (by: string, after: number) => log.handled.filter((h) => h.by === by && h.t > after).length
  await until('both consumers handle events', () => handledBy('v2', 0) >= 10 && handledBy('v1', 0) >= 10)

  // v2's consumer lives except between its SIGKILL and its successor's `consuming` line.
  let killedAt = Infinity
  let consumingAt = Infinity
  const v2Live = (lane: string, at: number) => lane === 'v2' && (at < killedAt || at > consumingAt)
  const phases: Array<{ scenario: string, from: number, to: number, recoveryMs: number, note: string }> = []

  await t.test('the v2 consumer SIGKILLed, then started again', async (t) => {
    const from = Date.now()
    killedAt = Date.now()
    await consumerV2.stop('SIGKILL')
    apps.splice(apps.indexOf(consumerV2), 1)
    const windowMs = await until('a v2 event handled by stable', () => log.handled.some((h) => h.by === 'v1' && h.eventLane === 'v2' && h.t > killedAt))
    await new Promise((r) => setTimeout(r, 2000))
    const restartedAt = Date.now()
    consumerV2 = await start('notification-service', 'v2')
    consumingAt = Date.now()
    const returnMs = await until('the new v2 consumer handles v2 events', () => handledBy('v2', restartedAt) > 0) + (consumingAt - restartedAt)
    await new Promise((r) => setTimeout(r, 3000))
    phases.push({ scenario: 'v2 consumer SIGKILLed, restarted 2 s after stable took over', from, to: Date.now(), recoveryMs: windowMs, note: `recovery: SIGKILL to stable's first v2 event (Kafka session timeout 6 s); the new v2 consumer's start to its first event ${(returnMs / 1000).toFixed(1)} s` })
    t.pass(`stable took v2 events ${windowMs} ms after the SIGKILL; the new consumer its first after ${returnMs} ms`)
  })

  await t.test('the broker restarted under the orders', async (t) => {
    const from = Date.now()
    // run from the repository's root, as the tools' paths are relative to it
    await run('sh', ['-c', restart], { timeout: 240_000, cwd: new URL('../../../../', import.meta.url).pathname })
    const back = Date.now()
    const downMs = back - from
    const resumedMs = await until('events handled again after the restart', () => handledBy('v1', back) > 0 && handledBy('v2', back) > 0, 120_000)
    await new Promise((r) => setTimeout(r, 3000))
    phases.push({ scenario: 'Kafka broker stopped and started again on its data', from, to: Date.now(), recoveryMs: resumedMs, note: `restart took ${(downMs / 1000).toFixed(1)} s; recovery: until both lanes' consumers handled events again; orders wait while the broker is away (order-service's producer retries)` })
    t.pass(`restart ${downMs} ms, both consumers handling again ${resumedMs} ms later`)
  })

  await t.test('every event handled at least once, in its lane; figures written to RELIABILITY.md', async (t) => {
    await load.stop()
    const placed: Placed[] = load.placed
    const missing = await log.waitAll(placed.map((p) => p.eventId), 120_000)
    const r = judge(placed, log, v2Live)
    t.equal(missing.length, 0, `all ${placed.length} events handled (lost: ${missing.slice(0, 5).join(', ')})`)
    t.equal(r.misrouted.length, 0, `none handled outside its lane while that lane's consumer was live (${JSON.stringify(r.misrouted.slice(0, 3))})`)
    t.equal(r.wrongHop.length, 0, `every handler in its event's lane, user-service called in it (${JSON.stringify(r.wrongHop.slice(0, 3))})`)
    t.ok(placed.filter((p) => p.lane === 'v2').length > 20, 'v2 events among them')
    const lost = new Set(missing)
    const bad = new Set([...r.misrouted, ...r.wrongHop].map((h) => h.eventId))
    const counts = new Map<string, number>()
    for (const h of log.handled) counts.set(h.eventId, (counts.get(h.eventId) ?? 0) + 1)
    const rows: Row[] = phases.map((p) => {
      const mine = placed.filter((e) => e.t >= p.from && e.t < p.to)
      const twice = mine.filter((e) => (counts.get(e.eventId) ?? 0) > 1).length
      return { scenario: p.scenario, sent: mine.length, failed: mine.filter((e) => lost.has(e.eventId)).length, misrouted: mine.filter((e) => bad.has(e.eventId)).length, recoveryMs: p.recoveryMs, durationMs: p.to - p.from, note: `${p.note}; ${mine.filter((e) => e.lane === 'v2').length} in v2; handled twice: ${twice}` }
    })
    const handover = phases[0]!
    const target = `${nacos.kind}${real === undefined || real === '' ? '' : ` (${real})`}`
    await writeSection(`## Message lanes under chaos: Kafka 4.4, ${target}`, [
      `${stamp()} UTC, ${Math.round((Date.now() - started) / 1000)} s in all, load average ${loadavg()[0]!.toFixed(1)} on a shared 2-core machine. ${placed.length} orders placed in all, ${r.duplicates} events handled twice (at least once), ${load.refused.length} orders refused and placed again.`,
      'Topology: gateway → order-service v1, v2 (POST /api/orders/:id publishes order-created, lane in its headers, signed) → Kafka (3 partitions) → notification-service v1, v2 (@flowtag/mq KafkaLaneConsumer, permissive, registered in Nacos over gRPC) → user-service v1, v2; a third of the orders are testers (lane v2). *Sent*: orders placed in the scenario; *failed*: their events never handled (lost); *misrouted*: handled by another lane\'s consumer while their lane\'s consumer was live (outside the measured handover: from the SIGKILL to the new v2 consumer\'s start), or a handler\'s user-service call out of the event\'s lane.'
    ], rows)
    t.comment(`kafka chaos: ${JSON.stringify(rows)}; handover ${handover.recoveryMs} ms`)
  })
}
