// The demo's async-hop act: a tester's order handled by notification-service v2 (and user-service
// v2 called in its lane), then steady orders while the v2 consumer is SIGKILLed: its events move to
// the stable consumer once Kafka's session timeout frees its partitions, and none is lost (counted
// by event id); then a new v2 consumer takes them back.
import { EventLog, judge, OrderLoad, placeOrder } from './async-hop.ts'
import type { AppProcess } from './cluster.ts'

export interface AsyncActOptions {
  gateway: AppProcess
  log: EventLog
  /** The running notification-service v2. */
  consumerV2: AppProcess
  /** Starts a notification-service in `version` and resolves once it consumes. */
  startConsumer(version: string): Promise<AppProcess>
  say(line: string): void
}

/** Runs the act; resolves with the new v2 consumer (the old one is dead). */
export async function runAsyncAct (o: AsyncActOptions): Promise<AppProcess> {
  const { gateway, log, say } = o
  say('\nasync hop: POST /api/orders/:id places an order; order-service publishes order-created to Kafka in the request\'s lane; notification-service (v1, v2) consumes it in lanes')
  const tester = await placeOrder(gateway.url, 'demo-1', { 'x-tester': 'true', 'x-user-id': 'tess' })
  if (typeof tester === 'string') throw new Error(`the tester's order was refused: ${tester}`)
  const missing = await log.waitAll([tester.eventId], 30_000)
  if (missing.length > 0) throw new Error(`event ${tester.eventId} was not handled within 30 s`)
  const h = log.of(tester.eventId)[0]!
  say(`  tester's order demo-1 -> ${tester.hops.slice(1).map((x) => `${x.service}@${x.version}`).join(' -> ')} -> order-created (lane ${tester.lane}, event ${tester.eventId.slice(0, 8)}) -> notification-service@${h.by} -> user-service@${h.userService?.version ?? '?'}`)

  say('  steady orders (a third of them testers, lane v2); in 4 s: SIGKILL notification-service@v2')
  const load = new OrderLoad(gateway.url, 'demo-')
  load.start(2, 50)
  await new Promise((r) => setTimeout(r, 4000))
  const killedAt = Date.now()
  await o.consumerV2.stop('SIGKILL')
  say('  killed notification-service@v2 (no goodbye: its Nacos instance goes with its connection, its Kafka partitions when its session times out)')
  const deadline = Date.now() + 60_000
  let byStable
  while ((byStable = log.handled.find((e) => e.by === 'v1' && e.eventLane === 'v2' && e.t > killedAt)) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  if (byStable === undefined) throw new Error('no v2 event reached the stable consumer within 60 s of the SIGKILL')
  say(`  v2 events handled by notification-service@v1 (stand-in for the v2 group) from ${((byStable.t - killedAt) / 1000).toFixed(1)} s after the kill`)
  await new Promise((r) => setTimeout(r, 3000))
  const backAt = Date.now()
  const consumerV2 = await o.startConsumer('v2')
  const consumingAt = Date.now()
  say(`  notification-service@v2 started again: consuming after ${((consumingAt - backAt) / 1000).toFixed(1)} s`)
  await new Promise((r) => setTimeout(r, 2000))
  await load.stop()
  const lost = await log.waitAll(load.placed.map((p) => p.eventId), 60_000)
  const r = judge(load.placed, log, (lane, at) => lane === 'v2' && (at < killedAt || at > consumingAt))
  const v2 = load.placed.filter((p) => p.lane === 'v2').length
  say(`  ${load.placed.length} orders placed (${v2} in v2), their events handled: ${load.placed.length - lost.length}, lost ${lost.length}, handled twice ${r.duplicates}, outside their lane while its consumer lived ${r.misrouted.length}`)
  return consumerV2
}
