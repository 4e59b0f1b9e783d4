// The chaos suite: the demo topology (gateways → order-service v1/v2 → user-service v1/v2, two
// instances a lane, each its own process) under steady load while Nacos, instances and rules
// misbehave. Every answer is judged (failed / misrouted); each scenario's figures go to a dated
// table in RELIABILITY.md, and any failed or misrouted request fails the suite.
// Against the dev server by default, or the real Nacos 2.5.0 NACOS_SERVER_ADDR names (started by
// tools/real-nacos/start.sh, which this restarts). CHAOS_OUTAGE_MS sets the Nacos outage (60 s).
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { NacosClient } from '@flowtag/nacos'
import type { RuleSetInput } from '@flowtag/rules'
import t, { type Test } from 'tap'
import { startApp, type AppProcess } from '../../src/cluster.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from '../../src/rulesets.ts'
import { Load, type Counts } from './load.ts'
import { devNacos, realNacos, type NacosProcess } from './nacos-process.ts'
import { writeReliability, type Row } from './report.ts'
import { until, applied } from './probes.ts'
import { ShareProbe } from './shares.ts'

const OUTAGE_MS = Number(process.env.CHAOS_OUTAGE_MS ?? 60_000)
const real = process.env.NACOS_SERVER_ADDR
const nacos: NacosProcess = real === undefined || real === '' ? await devNacos() : realNacos(real)
const namespace = `chaos-${Date.now().toString(36)}`
const cacheRoot = await mkdtemp(join(tmpdir(), 'flowtag-chaos-'))
const env = { NACOS_NAMESPACE: namespace, FLOWTAG_CACHE_DIR: cacheRoot, DRAIN_MS: '1500' }
const admin = new NacosClient({ serverAddr: nacos.addr, namespace, namingProtectEmpty: false })
const apps: AppProcess[] = []
const rows: Row[] = []
const started = Date.now()

t.teardown(async () => {
  await Promise.all(apps.map((a) => a.stop('SIGKILL')))
  await admin.close()
  await nacos.close()
  await rm(cacheRoot, { recursive: true, force: true })
})

/** Lines that tell of a start from the disk snapshot (the apps' own log buffer keeps only the last 2,000). */
const snapshotNotices: string[] = []
const start = async (name: string, version: string): Promise<AppProcess> => {
  const app = await startApp(name, version, { nacosAddr: nacos.addr, env, onLog: (who, line) => { if (line.includes('serving from the disk snapshot')) snapshotNotices.push(`${who} ${line}`) } })
  apps.push(app)
  return app
}
const stopApp = async (app: AppProcess, signal: NodeJS.Signals = 'SIGTERM') => {
  await app.stop(signal)
  apps.splice(apps.indexOf(app), 1)
}

/** Ports of the healthy instances Nacos lists, all services. */
async function listed (): Promise<Set<number>> {
  const ports = new Set<number>()
  for (const s of ['gateway', 'order-service', 'inventory-service', 'user-service']) {
    const res = await fetch(`http://${nacos.addr}/nacos/v1/ns/instance/list?serviceName=${s}&namespaceId=${namespace}&healthyOnly=true`)
    if (!res.ok) throw new Error(`instance list: ${res.status}`)
    for (const h of ((await res.json()) as { hosts: Array<{ port: number, healthy: boolean }> }).hosts) if (h.healthy) ports.add(h.port)
  }
  return ports
}
// inventory-service registers its gRPC port (logged once bound), the others their HTTP port.
const grpcPorts = new Map<AppProcess, number>()
function registeredPort (a: AppProcess): number | undefined {
  if (a.name !== 'inventory-service') return a.port
  if (!grpcPorts.has(a)) {
    for (const line of a.logs) {
      const m = /"grpcPort":(\d+)/.exec(line)
      if (m !== null) grpcPorts.set(a, Number(m[1]))
    }
  }
  return grpcPorts.get(a)
}
const allListed = async (): Promise<boolean> => {
  const ports = await listed()
  return apps.every((a) => ports.has(registeredPort(a) ?? -1))
}

let version = 0
const load = new Load([])
const published: RuleSetInput[] = []
async function publish (percentV2: number): Promise<number> {
  const doc: RuleSetInput = canaryRuleSet(++version, percentV2)
  published.push(doc)
  load.addRules(doc)
  await admin.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(doc), 'json')
  return version
}

/** Run one scenario under the load; its row counts what the load saw meanwhile. */
async function scenario (name: string, fn: (t: Test) => Promise<{ recoveryMs?: number, note?: string } | undefined>): Promise<void> {
  await t.test(name, async (t) => {
    const before: Counts = load.snapshot()
    const errorsBefore = load.errors.length
    const t0 = Date.now()
    const r = (await fn(t)) ?? {}
    await sleep(1000) // answers to requests sent during the fault
    const now = load.snapshot()
    const row: Row = {
      scenario: name,
      sent: now.sent - before.sent,
      failed: now.failed - before.failed,
      misrouted: now.misrouted - before.misrouted,
      recoveryMs: r.recoveryMs,
      durationMs: Date.now() - t0,
      note: r.note
    }
    rows.push(row)
    const why = load.errors.slice(errorsBefore, errorsBefore + 5).join('; ') || 'none'
    t.ok(row.sent > 50, `${row.sent} requests sent`)
    t.equal(row.failed, 0, `no failed request (${why})`)
    t.equal(row.misrouted, 0, `no misrouted request (${why})`)
  })
}

// The topology: two instances a lane, two gateways behind the load generator's round robin.
await publish(10)
// order-service calls inventory-service (gRPC) and user-service (HTTP) on every request.
for (const s of ['user-service', 'inventory-service', 'order-service']) for (const v of ['v1', 'v1', 'v2', 'v2']) await start(s, v)
const gateways = [await start('gateway', 'v1'), await start('gateway', 'v1')]
await until('all instances registered', allListed)
load.targets.push(...gateways.map((g) => g.url))
await applied(version, gateways)
load.start(4, 5)
await sleep(1000)

await scenario('rules flip 10 → 50 → 100 → 10 %', async () => {
  let worst = 0
  for (const p of [50, 100, 10]) {
    const v = await publish(p)
    worst = Math.max(worst, await applied(v, gateways))
    await sleep(2000)
  }
  return { recoveryMs: worst, note: 'worst time for a new RuleSet to apply at both gateways' }
})

await scenario('invalid rules mid-load', async () => {
  const good = version
  await admin.config.publish(RULES_DATA_ID, RULES_GROUP, '{ not json', 'json')
  await sleep(1500)
  await admin.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify({ version: good + 1, rules: [{ name: 'broken', lane: 'not a lane!' }] }), 'json')
  await sleep(2000)
  await applied(good, gateways) // still the last good set
  const v = await publish(10)
  return { recoveryMs: await applied(v, gateways), note: 'last good set kept; time for the next good one to apply' }
})

await scenario('hostile x-flow-tag and baggage headers', async () => {
  load.hostile = true
  await sleep(4000)
  load.hostile = false
  return { note: 'forged, junk, 5 KB tags and 12 KB baggage on every request; never honoured' }
})

await scenario('one instance SIGKILLed', async () => {
  const victim = apps.find((a) => a.name === 'user-service' && a.version === 'v2')!
  await stopApp(victim, 'SIGKILL')
  await sleep(4000)
  const replacement = await start('user-service', 'v2')
  return { recoveryMs: await until('the replacement registered', async () => (await listed()).has(replacement.port)), note: 'user-service v2, one of two; a replacement started 4 s later (recovery: until it is listed)' }
})

/** When the last new instance of each lane (`service version`) was listed in the rolling restart, for the warm-up scenario. */
const lastListed = new Map<string, number>()

await scenario('rolling restart of every service, gateways included', async () => {
  const t0 = Date.now()
  // Each new HTTP instance's share of its lane right after it is listed (warm-up, 60 s window):
  // the first new one of a lane of two is held back; once the second is listed, more than half
  // of the lane is warming and none is held back.
  const probe = new ShareProbe(() => apps)
  probe.start()
  const fresh: Array<{ app: AppProcess, at: number, nth: number }> = []
  const nth = new Map<string, number>()
  for (const old of [...apps]) {
    const isGateway = old.name === 'gateway'
    const next = await start(old.name, old.version)
    if (isGateway) {
      await applied(version, [next])
      const targets = load.targets
      targets.push(next.url)
      targets.splice(targets.indexOf(old.url), 1)
      gateways.splice(gateways.indexOf(old), 1, next)
      await sleep(200) // in-flight requests to the old gateway finish before it stops
    }
    await until(`${old.name}@${old.version} replacement registered`, async () => (await listed()).has(registeredPort(next) ?? -1))
    const lane = `${next.name} ${next.version}`
    nth.set(lane, (nth.get(lane) ?? 0) + 1)
    fresh.push({ app: next, at: Date.now(), nth: nth.get(lane)! })
    lastListed.set(lane, Date.now())
    await stopApp(old, 'SIGTERM')
  }
  await sleep(3000)
  await probe.stop()
  // Share in the 3 s after being listed, of the first and the second new instance of each lane.
  const lanes = [...nth.keys()].filter((l) => !l.startsWith('gateway') && !l.startsWith('inventory'))
  const pct = (f: { app: AppProcess, at: number } | undefined) => {
    const s = f === undefined ? undefined : probe.share(f.app, f.at, f.at + 3000)
    return s === undefined ? 'n/a' : `${Math.round(s.share * 100)} %`
  }
  const byLane = lanes.map((l) => `${l} ${fresh.filter((f) => `${f.app.name} ${f.app.version}` === l).map(pct).join(' then ')}`).join(', ')
  const warmup = `each new instance's share of its lane (two a lane) in its first 3 s, the first replaced then the second: ${byLane} (none is held back while more than half of a lane is within its first 60 s: the second of each lane, and a lane whose instances started less than a minute before)`
  return { recoveryMs: Date.now() - t0, note: `${apps.length} instances, one at a time (start, registered, SIGTERM: deregister, drain 1.5 s); time of the whole roll; ${warmup}` }
})

await scenario('a new instance joins a warm lane: its share ramps up (warm-up)', async (t) => {
  // The two instances there must be warm themselves (past their window since the roll).
  await sleep(Math.max(0, (lastListed.get('user-service v1') ?? 0) + 62_000 - Date.now()))
  const probe = new ShareProbe(() => apps)
  probe.start()
  const added = await start('user-service', 'v1')
  await until('the new instance registered', async () => (await listed()).has(added.port))
  const at = Date.now()
  // The default window is 60 s: bins of 10 s, then one after the window.
  const bins = [0, 10, 20, 30, 40, 50, 60].map((s) => s * 1000)
  await sleep(72_000)
  await probe.stop()
  const shares = bins.map((b) => probe.share(added, at + b, at + b + 10_000))
  const text = shares.map((s, i) => `${bins[i]! / 1000}–${bins[i]! / 1000 + 10} s ${s === undefined ? 'n/a' : `${Math.round(s.share * 100)} %`}`).join(', ')
  t.comment(`the third user-service v1 instance's share of its lane: ${text}`)
  const first = shares[0]?.share
  const after = shares.at(-1)?.share
  t.ok(first !== undefined && first < 0.2, `held back at first (${first}; a full share is 1/3)`)
  t.ok(after !== undefined && after > 0.22, `its full share after the window (${after})`)
  await stopApp(added)
  return { note: `a third user-service v1 instance (full share 33 %), its share of the lane by 10 s after it was listed: ${text}` }
})

await scenario(`Nacos SIGKILLed for ${OUTAGE_MS / 1000} s, restarted empty`, async (t) => {
  await nacos.kill()
  // A cold start while Nacos is down: a new gateway serves from its snapshot folder.
  const cold = await start('gateway', 'v1')
  const coldLoad = new Load([cold.url])
  for (const doc of published) coldLoad.addRules(doc)
  const coldStarted = Date.now()
  coldLoad.start(2, 5)
  await sleep(Math.max(0, OUTAGE_MS - 5000))
  await coldLoad.stop()
  // Only the cold gateway started while Nacos was down: one notice, from it.
  const notice = snapshotNotices.length === 1 && snapshotNotices[0]!.startsWith('gateway') ? snapshotNotices[0] : undefined
  rows.push({
    scenario: 'cold start while Nacos is down',
    ...coldLoad.snapshot(),
    durationMs: Date.now() - coldStarted,
    note: notice === undefined ? 'no snapshot notice logged' : `logged once: "${/"msg":"([^"]+)"/.exec(notice)?.[1]}"`
  })
  t.equal(coldLoad.counts.failed + coldLoad.counts.misrouted, 0, `cold gateway: 0 failed / misrouted of ${coldLoad.counts.sent} (${coldLoad.errors.slice(0, 3).join('; ') || 'none'})`)
  t.ok(notice, `the cold gateway said once that it serves from its snapshot (${snapshotNotices.length} notices)`)
  await sleep(Math.min(5000, OUTAGE_MS))

  await nacos.restart()
  const back = Date.now()
  const instancesMs = await until('every instance registered again', allListed)
  const v = await publish(10)
  await applied(v, [...gateways, cold])
  const rulesMs = Date.now() - back
  await stopApp(cold)
  return { recoveryMs: instancesMs, note: `instances back ${instancesMs} ms after the server answered; a RuleSet published then applied at ${rulesMs} ms` }
})

await t.test('figures written to RELIABILITY.md', async (t) => {
  await load.stop()
  const target = `${nacos.kind}${real === undefined ? '' : ` (${real})`}`
  await writeReliability(target, rows, { elapsedS: Math.round((Date.now() - started) / 1000), outageMs: OUTAGE_MS, load: loadavg()[0]!.toFixed(1) })
  t.equal(rows.length, 8, `${rows.length} rows for ${target}`)
})
