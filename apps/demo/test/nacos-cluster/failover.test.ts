// A real Nacos 2.5.0 cluster of three nodes (tools/real-nacos/start-cluster.sh; NACOS_CLUSTER_ADDR
// lists them) under the demo topology, every app given all three addresses with the transport the
// apps use ('auto' → gRPC). Under steady load: find the node the apps' connections are on (their
// own logs, checked against that node's connection table), SIGKILL it, and require 0 failed and 0
// misrouted requests, every app reconnected to a survivor, every instance listed on each survivor
// once the dead node's copies of them have expired there, and a RuleSet published on a survivor
// after the kill applied at the gateway. Then restart the node and require it to rejoin and serve
// every instance and the last RuleSet. Figures go to RELIABILITY.md. Run by scripts/test.
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { RULES_VERSION_METADATA } from '@flowtag/canary'
import type { RuleSetInput } from '@flowtag/rules'
import t, { type Test } from 'tap'
import { startApp, type AppProcess } from '../../src/cluster.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from '../../src/rulesets.ts'
import { Load, type Counts } from '../chaos/load.ts'
import { realNacos } from '../chaos/nacos-process.ts'
import { stamp, writeSection, type Row } from '../chaos/report.ts'
import { until, applied } from '../chaos/probes.ts'

const members = process.env.NACOS_CLUSTER_ADDR ?? ''
const nodes = members.split(',').map((a) => a.trim()).filter((a) => a !== '')
if (nodes.length !== 3) throw new Error(`NACOS_CLUSTER_ADDR must list the three nodes tools/real-nacos/start-cluster.sh started (got "${members}")`)
const namespace = `cluster-${Date.now().toString(36)}`
const cacheRoot = await mkdtemp(join(tmpdir(), 'flowtag-nacos-cluster-'))
const env = { NACOS_NAMESPACE: namespace, FLOWTAG_CACHE_DIR: cacheRoot, DRAIN_MS: '1500' }
const SERVICES = ['gateway', 'order-service', 'inventory-service', 'user-service']
/** The apps that listen to the RuleSet (a config connection besides the naming one). */
const LISTENERS = new Set(['gateway', 'order-service'])
const rows: Row[] = []
const started = Date.now()

/** A gRPC connection an app logged ("nacos grpc connected"): the node (HTTP address) and Nacos's id for it. */
interface Conn { node: string, connectionId: string, at: number }
interface Client { app: AppProcess, naming?: Conn | undefined, config?: Conn | undefined, grpcPort?: number | undefined }
const clients: Client[] = []

/** The node whose gRPC port (HTTP + 1000) a connection log names. */
function nodeOf (grpcOrigin: string): string {
  const [host, port] = [grpcOrigin.slice(0, grpcOrigin.lastIndexOf(':')), Number(grpcOrigin.slice(grpcOrigin.lastIndexOf(':') + 1))]
  return nodes.find((n) => n === `${host}:${port - 1000}` || n === grpcOrigin) ?? grpcOrigin
}

async function start (name: string, version: string): Promise<Client> {
  const client: Partial<Client> = {}
  const app = await startApp(name, version, {
    nacosAddr: members,
    env,
    onLog: (_who, line) => {
      if (!line.includes('"nacos grpc connected"') && !line.includes('"grpcPort"')) return
      let o: { msg?: string, module?: string, server?: string, connectionId?: string, grpcPort?: number }
      try {
        o = JSON.parse(line) as typeof o
      } catch {
        return // not a log record
      }
      if (typeof o.grpcPort === 'number') client.grpcPort = o.grpcPort
      if (o.msg !== 'nacos grpc connected' || o.server === undefined || o.connectionId === undefined) return
      const conn = { node: nodeOf(o.server), connectionId: o.connectionId, at: Date.now() }
      if (o.module === 'naming') client.naming = conn
      else if (o.module === 'config') client.config = conn
    }
  })
  client.app = app
  clients.push(client as Client)
  return client as Client
}

t.teardown(async () => {
  await Promise.all(clients.map((c) => c.app.stop('SIGKILL')))
  await rm(cacheRoot, { recursive: true, force: true })
})
// A failed set-up (a throw at the top level) or a timeout ends the process without the teardown:
// never leave an app behind.
process.once('exit', () => {
  for (const c of clients) c.app.child.kill('SIGKILL')
})

async function getJson<T> (node: string, path: string): Promise<T> {
  const res = await fetch(`http://${node}/nacos${path}`, { signal: AbortSignal.timeout(5000) })
  if (!res.ok) throw new Error(`${node} ${path}: HTTP ${res.status}`)
  return (await res.json()) as T
}

/** The port each app registered: inventory-service its gRPC port, the others their HTTP port. */
const registeredPort = (c: Client): number | undefined => (c.app.name === 'inventory-service' ? c.grpcPort : c.app.port)

/** Healthy instances `node` lists, every service of the topology, as `service:port`. */
async function listedOn (node: string): Promise<Set<string>> {
  const out = new Set<string>()
  for (const s of SERVICES) {
    const body = await getJson<{ hosts: Array<{ port: number, healthy: boolean }> }>(node, `/v1/ns/instance/list?serviceName=${s}&namespaceId=${namespace}&healthyOnly=true`)
    for (const h of body.hosts) if (h.healthy) out.add(`${s}:${h.port}`)
  }
  return out
}
const allListedOn = async (node: string): Promise<boolean> => {
  const listed = await listedOn(node)
  return clients.every((c) => listed.has(`${c.app.name}:${registeredPort(c) ?? -1}`))
}

/** Entries for the same instance seen in one list (a survivor may list a dead peer's copy next to the new registration). */
let duplicates = 0
/** Whether every RuleSet listener (gateway, order-service) `node` lists says in its metadata that it applied `v`. */
async function listenersApplied (node: string, v: number): Promise<boolean> {
  for (const s of LISTENERS) {
    const body = await getJson<{ hosts: Array<{ port: number, metadata?: Record<string, string> }> }>(node, `/v1/ns/instance/list?serviceName=${s}&namespaceId=${namespace}`)
    for (const c of clients.filter((c) => c.app.name === s)) {
      const entries = body.hosts.filter((h) => h.port === c.app.port)
      duplicates = Math.max(duplicates, entries.length)
      if (!entries.some((h) => h.metadata?.[RULES_VERSION_METADATA] === String(v))) return false
    }
  }
  return true
}

/** Connection ids a node holds for clients (not for its peers), from its own table. */
async function connectionsOn (node: string): Promise<Set<string>> {
  const table = await getJson<Record<string, { metaInfo?: { clusterSource?: boolean } }>>(node, '/v2/core/loader/current')
  return new Set(Object.entries(table).filter(([, c]) => c.metaInfo?.clusterSource !== true).map(([id]) => id))
}
/** Naming clients (ids) a node holds, its own and copies synced from its peers. */
async function namingClientsOn (node: string): Promise<Set<string>> {
  return new Set((await getJson<{ data: string[] }>(node, '/v2/ns/client/list')).data)
}

/** The JRaft leader (`host:raftPort`) of the config group, as `node` sees it. */
async function configLeader (node: string): Promise<string | undefined> {
  const body = await getJson<{ data: Array<{ address: string, extendInfo?: { raftMetaData?: { metaDataMap?: Record<string, { leader?: string }> } } }> }>(node, '/v1/core/cluster/nodes')
  return body.data.find((m) => m.address === node)?.extendInfo?.raftMetaData?.metaDataMap?.nacos_config?.leader
}

let version = 0
const load = new Load([])
/** Publish a RuleSet through `node` (HTTP v1), again until it is accepted (a write needs a JRaft leader); ms until accepted. */
async function publish (node: string, percentV2: number): Promise<{ version: number, ms: number }> {
  const doc: RuleSetInput = canaryRuleSet(++version, percentV2)
  load.addRules(doc)
  const form = new URLSearchParams({ dataId: RULES_DATA_ID, group: RULES_GROUP, tenant: namespace, type: 'json', content: JSON.stringify(doc) })
  const ms = await until(`${node} to accept RuleSet ${version}`, async () => {
    const res = await fetch(`http://${node}/nacos/v1/cs/configs`, { method: 'POST', body: form, signal: AbortSignal.timeout(5000) })
    const body = await res.text()
    if (res.status !== 200 || body !== 'true') throw new Error(`HTTP ${res.status} ${body.slice(0, 200)}`)
    return true
  })
  return { version, ms }
}

/** Run one scenario under the load; its row counts what the load saw meanwhile. */
async function scenario (name: string, fn: (t: Test) => Promise<{ recoveryMs?: number, note?: string }>): Promise<void> {
  await t.test(name, async (t) => {
    const before: Counts = load.snapshot()
    const errorsBefore = load.errors.length
    const t0 = Date.now()
    const r = await fn(t)
    await sleep(1000) // answers to requests sent during the fault
    const now = load.snapshot()
    const row: Row = { scenario: name, sent: now.sent - before.sent, failed: now.failed - before.failed, misrouted: now.misrouted - before.misrouted, recoveryMs: r.recoveryMs, durationMs: Date.now() - t0, note: r.note }
    rows.push(row)
    const why = load.errors.slice(errorsBefore, errorsBefore + 5).join('; ') || 'none'
    t.ok(row.sent > 50, `${row.sent} requests sent`)
    t.equal(row.failed, 0, `no failed request (${why})`)
    t.equal(row.misrouted, 0, `no misrouted request (${why})`)
  })
}

// The topology, one instance a lane: gateway → order-service v1/v2 → inventory-service (gRPC)
// v1/v2 and user-service v1/v2; each app holds a naming and a config connection.
await publish(nodes[0]!, 10)
for (const s of ['user-service', 'inventory-service', 'order-service']) for (const v of ['v1', 'v2']) await start(s, v)
const gateway = (await start('gateway', 'v1')).app
for (const node of nodes) await until(`every instance listed on ${node}`, () => allListedOn(node))
await applied(version, [gateway])
load.targets.push(gateway.url)

// Where the apps' connections are: each app's log, checked against the node's connection table.
/** An app's gRPC connections: naming, and config where it listens to the RuleSet. */
const conns = (c: Client): Array<Conn | undefined> => (LISTENERS.has(c.app.name) ? [c.naming, c.config] : [c.naming])
await until('every app connected (naming; config where it listens)', () => clients.every((c) => conns(c).every((x) => x !== undefined)))
const perNode = new Map(nodes.map((n) => [n, 0]))
for (const c of clients) for (const conn of conns(c)) perNode.set(conn!.node, (perNode.get(conn!.node) ?? 0) + 1)
const victim = [...perNode.entries()].sort((a, b) => b[1] - a[1])[0]![0]
const survivors = nodes.filter((n) => n !== victim)
const onVictim = clients.filter((c) => conns(c).some((x) => x!.node === victim))
const node = realNacos(victim, members)
load.start(4, 5)

await scenario(`the node the apps are connected to (${victim}) SIGKILLed`, async (t) => {
  // Where the apps' connections are, as their logs say, is where the nodes' tables have them.
  for (const n of nodes) {
    const held = await connectionsOn(n)
    for (const c of clients) {
      for (const conn of conns(c)) if (conn!.node === n) t.ok(held.has(conn!.connectionId), `${c.app.name}@${c.app.version}: ${conn!.connectionId} on ${n}`)
    }
  }
  t.ok(onVictim.length > 0, `${onVictim.length} of ${clients.length} apps on ${victim}, the node to kill (connections per node: ${JSON.stringify(Object.fromEntries(perNode))})`)
  await sleep(2000) // the load runs a while before the kill
  const victimLed = await configLeader(victim) === `${victim.slice(0, victim.lastIndexOf(':'))}:${Number(victim.slice(victim.lastIndexOf(':') + 1)) - 1000}`
  const oldIds = onVictim.filter((c) => c.naming!.node === victim).map((c) => c.naming!.connectionId)
  const killedAt = Date.now()
  await node.kill()
  // Every app on the victim reconnects to a survivor, for naming (and config where it listens).
  await until('every app reconnected to a survivor', () =>
    onVictim.every((c) => conns(c).every((x) => survivors.includes(x!.node) && x!.at > killedAt)))
  const worstNaming = Math.max(...onVictim.map((c) => c.naming!.at - killedAt))
  const worstConfig = Math.max(...onVictim.filter((c) => LISTENERS.has(c.app.name)).map((c) => c.config!.at - killedAt))
  for (const survivor of survivors) {
    const held = await connectionsOn(survivor)
    for (const c of onVictim) for (const conn of conns(c)) if (conn!.node === survivor) t.ok(held.has(conn!.connectionId), `${c.app.name}@${c.app.version}: ${conn!.connectionId} on ${survivor}`)
  }
  // A RuleSet published on a survivor (once JRaft has a leader again) reaches the RuleSet listeners.
  const published = await publish(survivors[0]!, 50)
  const deliveredMs = await applied(published.version, [gateway])
  const sinceKillMs = Date.now() - killedAt
  // Every listener got it (each reports the version it applied in its instance metadata, which
  // it updates on the survivor it is connected to now), as both survivors list it.
  const listenersMs = deliveredMs + await until(`every RuleSet listener reports version ${published.version} on both survivors`, async () =>
    (await listenersApplied(survivors[0]!, published.version)) && listenersApplied(survivors[1]!, published.version), 60_000)
  // The survivors drop their copies of the victim's clients (not renewed by Distro any more);
  // what they list then is what the apps registered again on them.
  await until('the dead node\'s clients expired on the survivors', async () => {
    for (const s of survivors) {
      const ids = await namingClientsOn(s)
      if (oldIds.some((id) => ids.has(id))) return false
    }
    return true
  }, 90_000)
  const staleGoneAt = Date.now() - killedAt
  for (const s of survivors) {
    const listed = await listedOn(s)
    for (const c of clients) t.ok(listed.has(`${c.app.name}:${registeredPort(c)}`), `${c.app.name}@${c.app.version} listed on ${s}`)
  }
  return {
    recoveryMs: Math.max(worstNaming, worstConfig),
    note: `${onVictim.length} of ${clients.length} apps were on it; every one reconnected to a survivor and redid its instances and subscriptions (naming ≤ ${worstNaming} ms, config ≤ ${worstConfig} ms after the kill; recovery: the worst); ` +
      `a RuleSet published on ${survivors[0]} right after was accepted ${(published.ms / 1000).toFixed(1)} s after its first try (config writes wait for a JRaft leader${victimLed ? '; the dead node led the config group' : ''}) and applied at the gateway ${deliveredMs} ms later (${(sinceKillMs / 1000).toFixed(1)} s after the kill), reported applied by every listener (gateway, order-service v1, v2) in its metadata on both survivors ≤ ${listenersMs} ms after it was accepted${duplicates > 1 ? ` (a survivor listed an instance ${duplicates} times meanwhile: the dead node's copy and the new registration)` : ''}; ` +
      `the dead node's copies of the clients gone from both survivors at ${(staleGoneAt / 1000).toFixed(1)} s, every instance still listed on both`
  }
})

await scenario(`${victim} restarted empty, rejoins`, async (t) => {
  const t0 = Date.now()
  await node.restart()
  const upMs = Date.now() - t0
  const rejoinMs = await until(`${victim} UP on every node`, async () => {
    for (const n of nodes) {
      const body = await getJson<{ data: Array<{ address: string, state: string }> }>(n, '/v1/core/cluster/nodes')
      if (body.data.length !== nodes.length || body.data.some((m) => m.state !== 'UP')) return false
    }
    return true
  }, 90_000)
  const instancesMs = await until(`every instance listed on ${victim}`, () => allListedOn(victim), 60_000)
  const configMs = await until(`${victim} serves the last RuleSet`, async () => {
    const res = await fetch(`http://${victim}/nacos/v1/cs/configs?dataId=${RULES_DATA_ID}&group=${RULES_GROUP}&tenant=${namespace}`, { signal: AbortSignal.timeout(5000) })
    return res.ok && ((JSON.parse(await res.text()) as { version?: number }).version === version)
  }, 60_000)
  t.pass(`${victim} rejoined: UP everywhere, every instance and the last RuleSet served`)
  return { recoveryMs: Date.now() - t0, note: `start.sh ready in ${(upMs / 1000).toFixed(1)} s, UP on every node ${(rejoinMs / 1000).toFixed(1)} s later; then it listed every instance (+${(instancesMs / 1000).toFixed(1)} s) and served the last RuleSet (+${(configMs / 1000).toFixed(1)} s); recovery: from the restart` }
})

await t.test('figures written to RELIABILITY.md', async (t) => {
  await load.stop()
  await writeSection('## Nacos cluster failover: real Nacos 2.5.0 ×3', [
    `${stamp()} UTC, ${Math.round((Date.now() - started) / 1000)} s in all (cluster start not included), load average ${loadavg()[0]!.toFixed(1)} on a shared 2-core machine. \`apps/demo/test/nacos-cluster\`, run by \`./scripts/test\`.`,
    `Cluster: ${members} (tools/real-nacos/start-cluster.sh: embedded storage, JRaft; dead peers' clients dropped after 30 s). Every app is given the three addresses, transport \`auto\` (gRPC). Topology: gateway → order-service v1, v2 → inventory-service (gRPC) v1, v2 and user-service v1, v2, one process each; load: 4 workers, 5 % testers, 500 sticky users.`
  ], rows)
  t.equal(rows.length, 2, `${rows.length} rows`)
})
