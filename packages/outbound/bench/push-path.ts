// The whole in-process path of a pushed 1,000-instance list, from the gRPC message's bytes to the
// dispatcher's new table in use, step by step: decoding the Nacos Payload (protobuf + JSON), the
// client reading the ServiceInfo, diffing it against the list it held, and the ServiceTable's
// update (members, lanes, warm-up, the alias tables). As scale.ts's push phase: `big`'s list, one
// instance's metadata changed per push. Process CPU time (`process.cpuUsage()`) and wall time per
// push; with no network and no other process in the way, what the code itself costs.
// `node bench/push-path.ts [pushes=2000]` prints JSON.
import type { Instance } from '@flowtag/nacos'
import { diffInstances } from '../../nacos/src/discovery.ts'
import { decodePayload, encodePayload } from '../../nacos/src/grpc-wire.ts'
import { parseServiceInfo } from '../../nacos/src/transport-v1.ts'
import { bigIp, laneOf, BIG, BIG_SIZE } from '../../nacos-dev-server/bench/scale-fleet.ts'
import { defaultPoolFactory } from '../src/instance-pool.ts'
import { DEFAULT_RETRY_BUDGET } from '../src/retry-budget.ts'
import { ServiceTable } from '../src/service-table.ts'
import { DEFAULT_WARMUP } from '../src/warmup.ts'

const PUSHES = Number(process.argv[2] ?? 2000)
const WARMUP_PUSHES = 200

const table = new ServiceTable({
  service: BIG,
  labelKey: 'version',
  protocol: 'http:',
  poolOptions: { connections: null, connectTimeout: 2000, headersTimeout: 30_000, bodyTimeout: 30_000, keepAliveTimeout: 4000 },
  factory: defaultPoolFactory,
  outlier: { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50, count5xx: false },
  warmup: DEFAULT_WARMUP,
  retryBudget: DEFAULT_RETRY_BUDGET
}, 'v1')

/** The NotifySubscriberRequest the dev server pushes for `big`, instance `changed` carrying `round`. */
function push (round: number): Buffer {
  const changed = (round * 7) % BIG_SIZE
  const hosts = Array.from({ length: BIG_SIZE }, (_, j) => ({
    instanceId: `${bigIp(j)}#8080#DEFAULT#DEFAULT_GROUP@@${BIG}`,
    ip: bigIp(j),
    port: 8080,
    weight: 1,
    healthy: true,
    enabled: true,
    ephemeral: false,
    clusterName: 'DEFAULT',
    serviceName: `DEFAULT_GROUP@@${BIG}`,
    metadata: j === changed ? { version: laneOf(j), round: String(round) } : { version: laneOf(j) }
  }))
  const serviceInfo = { name: BIG, groupName: 'DEFAULT_GROUP', clusters: '', cacheMillis: 10_000, hosts, lastRefTime: Date.now(), checksum: '', allIPs: false, reachProtectionThreshold: false, valid: true }
  return encodePayload({ type: 'NotifySubscriberRequest', headers: {}, body: { serviceInfo, module: 'naming', requestId: String(round), headers: {} } })
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since)
  return (d.user + d.system) / 1000
}
const between = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number => (b.user + b.system - a.user - a.system) / 1000
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

let held: Instance[] = parseServiceInfo((decodePayload(push(0)).body.serviceInfo), BIG, 'DEFAULT_GROUP').instances
table.update(held)
const steps = { decode: [] as number[], read: [] as number[], diff: [] as number[], table: [] as number[], whole: [] as number[], wall: [] as number[] }
for (let r = 1; r <= WARMUP_PUSHES + PUSHES; r++) {
  const bytes = push(r)
  const w = performance.now()
  const c0 = process.cpuUsage()
  const msg = decodePayload(bytes)
  const c1 = process.cpuUsage()
  const snap = parseServiceInfo(msg.body.serviceInfo, BIG, 'DEFAULT_GROUP')
  const c2 = process.cpuUsage()
  const change = diffInstances(BIG, held, snap.instances)
  const c3 = process.cpuUsage()
  table.update(change.instances)
  const tableMs = cpuMs(c3)
  const wall = performance.now() - w
  held = snap.instances
  if (change.changed.length === 0 || change.changed.length > 2) throw new Error(`round ${r}: ${change.changed.length} changed`)
  if (r <= WARMUP_PUSHES) continue
  steps.decode.push(between(c0, c1))
  steps.read.push(between(c1, c2))
  steps.diff.push(between(c2, c3))
  steps.table.push(tableMs)
  steps.whole.push(cpuMs(c0))
  steps.wall.push(wall)
}
const fig = (xs: number[]) => ({ p50: Number(pct(xs, 50).toFixed(3)), p99: Number(pct(xs, 99).toFixed(3)), max: Number(Math.max(...xs).toFixed(3)) })
console.log(JSON.stringify({
  node: process.version,
  instances: BIG_SIZE,
  pushes: PUSHES,
  bytesPerPush: push(1).length,
  cpuMs: { decode: fig(steps.decode), readServiceInfo: fig(steps.read), diff: fig(steps.diff), tableUpdate: fig(steps.table), whole: fig(steps.whole) },
  wallMs: fig(steps.wall)
}, null, 2))
