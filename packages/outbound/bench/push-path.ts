// The whole in-process path of a pushed 1,000-instance list, from the gRPC message's bytes to the
// dispatcher's new table in use, step by step: decoding the Nacos Payload (protobuf + JSON), the
// client reading the ServiceInfo, diffing it against the list it held, and the ServiceTable's
// update with the change set the listener gets (members, lanes, warm-up, the alias tables). As
// scale.ts's push phase: `big`'s list, one instance's metadata changed per push (`--kind weight`:
// its weight, which rebuilds its lane). Process CPU time (`process.cpuUsage()`) and wall time per
// push; with no network and no other process in the way, what the code itself costs.
//
// `--base <dir>`: the same pushes also go, paired within each round (the order alternating), through
// the read, diff and table code of an older tree (its whole-list `update`): make it with
//   mkdir -p packages/outbound/.base && git archive <commit> packages/outbound/src packages/nacos/src | tar -x -C packages/outbound/.base
// (inside the package, so that its imports resolve; `.base/` is git-ignored; delete it before linting).
// `--only base|current` runs one of the two alone (a process of its own: no garbage of the other).
// `node bench/push-path.ts [pushes=2000] [--kind metadata|weight] [--base <dir>] [--only base|current]` prints JSON.
import { resolve } from 'node:path'
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import type { Instance } from '@flowtag/nacos'
import { diffInstances } from '../../nacos/src/discovery.ts'
import { decodePayload, encodePayload } from '../../nacos/src/grpc-wire.ts'
import { parseServiceInfo } from '../../nacos/src/transport-v1.ts'
import { bigIp, laneOf, BIG, BIG_SIZE } from '../../nacos-dev-server/bench/scale-fleet.ts'
import { defaultPoolFactory } from '../src/instance-pool.ts'
import { DEFAULT_RETRY_BUDGET } from '../src/retry-budget.ts'
import { ServiceTable, type TableConfig } from '../src/service-table.ts'
import { DEFAULT_WARMUP } from '../src/warmup.ts'

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? undefined : process.argv[i + 1]
}
const PUSHES = Number(process.argv[2] !== undefined && !process.argv[2].startsWith('--') ? process.argv[2] : 2000)
const KIND = arg('kind') ?? 'metadata'
const BASE = arg('base')
const WARMUP_PUSHES = 200

const config: TableConfig = {
  service: BIG,
  labelKey: 'version',
  protocol: 'http:',
  poolOptions: { connections: null, connectTimeout: 2000, headersTimeout: 30_000, bodyTimeout: 30_000, keepAliveTimeout: 4000 },
  factory: defaultPoolFactory,
  outlier: { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50, count5xx: false },
  warmup: DEFAULT_WARMUP,
  retryBudget: DEFAULT_RETRY_BUDGET
}

/** The NotifySubscriberRequest the dev server pushes for `big`, instance `changed` carrying `round`. */
function push (round: number): Buffer {
  const changed = (round * 7) % BIG_SIZE
  const hosts = Array.from({ length: BIG_SIZE }, (_, j) => ({
    instanceId: `${bigIp(j)}#8080#DEFAULT#DEFAULT_GROUP@@${BIG}`,
    ip: bigIp(j),
    port: 8080,
    weight: KIND === 'weight' && j === changed && round % 2 === 1 ? 2 : 1,
    healthy: true,
    enabled: true,
    ephemeral: false,
    clusterName: 'DEFAULT',
    serviceName: `DEFAULT_GROUP@@${BIG}`,
    metadata: KIND === 'metadata' && j === changed ? { version: laneOf(j), round: String(round) } : { version: laneOf(j) }
  }))
  const serviceInfo = { name: BIG, groupName: 'DEFAULT_GROUP', clusters: '', cacheMillis: 10_000, hosts, lastRefTime: Date.now(), checksum: '', allIPs: false, reachProtectionThreshold: false, valid: true }
  return encodePayload({ type: 'NotifySubscriberRequest', headers: {}, body: { serviceInfo, module: 'naming', requestId: String(round), headers: {} } })
}

interface Code {
  parse: typeof parseServiceInfo
  diff: typeof diffInstances
  table: { update (list: readonly Instance[], change?: unknown): void }
  /** Hands the table the change set (this tree) or the list only (an older one). */
  withChange: boolean
}

interface Path {
  code: Code
  held: Instance[]
  steps: { decode: number[]; read: number[]; diff: number[]; table: number[]; whole: number[]; wall: number[] }
}

async function baseCode (dir: string): Promise<Code> {
  const at = (p: string) => import(pathToFileURL(resolve(dir, p)).href)
  const { diffInstances: diff } = await at('packages/nacos/src/discovery.ts') as { diffInstances: typeof diffInstances }
  const { parseServiceInfo: parse } = await at('packages/nacos/src/transport-v1.ts') as { parseServiceInfo: typeof parseServiceInfo }
  const { ServiceTable: Table } = await at('packages/outbound/src/service-table.ts') as { ServiceTable: typeof ServiceTable }
  return { parse, diff, table: new Table(config, 'v1'), withChange: false }
}

const paths: { current?: Path; base?: Path } = {}
const start = (code: Code): Path => {
  const held = code.parse(decodePayload(push(0)).body.serviceInfo, BIG, 'DEFAULT_GROUP').instances
  code.table.update(held)
  return { code, held, steps: { decode: [], read: [], diff: [], table: [], whole: [], wall: [] } }
}
const ONLY = arg('only')
if (ONLY !== 'base') paths.current = start({ parse: parseServiceInfo, diff: diffInstances, table: new ServiceTable(config, 'v1'), withChange: true })
if (BASE !== undefined && ONLY !== 'current') paths.base = start(await baseCode(BASE))

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since)
  return (d.user + d.system) / 1000
}
const between = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number => (b.user + b.system - a.user - a.system) / 1000
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

function run (path: Path, bytes: Buffer, r: number): void {
  const { code, steps } = path
  const w = performance.now()
  const c0 = process.cpuUsage()
  const msg = decodePayload(bytes)
  const c1 = process.cpuUsage()
  const snap = code.parse(msg.body.serviceInfo, BIG, 'DEFAULT_GROUP')
  const c2 = process.cpuUsage()
  const change = code.diff(BIG, path.held, snap.instances)
  const c3 = process.cpuUsage()
  if (code.withChange) code.table.update(change.instances, change)
  else code.table.update(change.instances)
  const tableMs = cpuMs(c3)
  const wall = performance.now() - w
  path.held = change.instances
  if (change.changed.length === 0 || change.changed.length > 2) throw new Error(`round ${r}: ${change.changed.length} changed`)
  if (r <= WARMUP_PUSHES) return
  steps.decode.push(between(c0, c1))
  steps.read.push(between(c1, c2))
  steps.diff.push(between(c2, c3))
  steps.table.push(tableMs)
  steps.whole.push(cpuMs(c0))
  steps.wall.push(wall)
}

const loadStart = loadavg()
const order = [paths.current, paths.base].filter((p) => p !== undefined)
for (let r = 1; r <= WARMUP_PUSHES + PUSHES; r++) {
  const bytes = push(r)
  // Paired: both paths get the same push, the order alternating.
  for (const path of r % 2 === 0 ? order : [...order].reverse()) run(path, bytes, r)
}
const fig = (xs: number[]) => ({ p50: Number(pct(xs, 50).toFixed(3)), p99: Number(pct(xs, 99).toFixed(3)), max: Number(Math.max(...xs).toFixed(3)) })
const report = (p: Path) => ({
  cpuMs: { decode: fig(p.steps.decode), readServiceInfo: fig(p.steps.read), diff: fig(p.steps.diff), tableUpdate: fig(p.steps.table), whole: fig(p.steps.whole) },
  wallMs: fig(p.steps.wall),
  wholeCpuOver5ms: p.steps.whole.filter((x) => x > 5).length
})
const out: Record<string, unknown> = {
  node: process.version,
  instances: BIG_SIZE,
  pushes: PUSHES,
  kind: KIND,
  bytesPerPush: push(1).length,
  loadavg: { start: loadStart.map((x) => Number(x.toFixed(1))), end: loadavg().map((x) => Number(x.toFixed(1))) },
}
if (paths.current !== undefined) out.current = { ...report(paths.current), incrementalUpdates: (paths.current.code.table as ServiceTable).incrementalUpdates }
if (paths.base !== undefined) out.base = report(paths.base)
if (paths.current !== undefined && paths.base !== undefined) {
  // Per round, the current whole path's CPU over the base's: the median of the paired ratios.
  const base = paths.base
  const ratios = paths.current.steps.whole.map((x, i) => x / (base.steps.whole[i] as number)).filter(Number.isFinite)
  out.pairedWholeCpuRatio = { p50: Number(pct(ratios, 50).toFixed(3)) }
}
console.log(JSON.stringify(out, null, 2))
