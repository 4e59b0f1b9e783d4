// The gateway of the scale benchmark (its own process, run with --expose-gc):
//   node --expose-gc bench/scale-gateway.ts <static|nacos|agent> <services> <rules> <requests> <upstreamPort> [nacosAddr]
// holds the view a gateway has of a large fleet: a FlowTagDispatcher over <services> services of
// 20 instances (static: a StaticDiscovery; nacos: the @flowtag/nacos naming client over gRPC to a
// dev server holding the whole fleet), lanes from a RuleSet of <rules> rules naming every service,
// and <requests> requests sent to each service (1: one pool per service; 40: most instances have a
// pool and a connection). Then reports its RSS and heap after a full GC. With <services> 0 and
// <rules> 0 it is the baseline: the same modules, dispatcher and client, nothing held. `agent`:
// no flowtag at all, a bare undici Agent sending the same requests straight to the instances'
// addresses (round robin within each service): what the connections cost without lanes.
// Then (with <services> > 0) the push phase: `big`, a service of 1,000 instances, gets a new list
// 200 times (one instance's metadata changed, as a re-registration does); each time it measures
// the list's arrival → the dispatcher's table rebuilt (a listener subscribed after the dispatcher's
// sees the change only after the table was replaced: listeners run in order, synchronously), and
// with nacos the whole path: the change sent to the dev server → its push → our client → table.
// Sends one JSON message to its parent.
import { request, Agent, type Dispatcher } from 'undici'
import { StaticDiscovery, NacosClient, type Instance } from '@flowtag/nacos'
import { RuleStore, staticSource, serviceLanes } from '@flowtag/rules'
import { FlowTagDispatcher, type Discovery } from '../src/index.ts'
import { serviceName, instanceIp, bigIp, laneOf, BIG, BIG_SIZE } from '../../nacos-dev-server/bench/scale-fleet.ts'

const [mode, servicesArg, rulesArg, requestsArg, portArg, addr] = process.argv.slice(2)
const services = Number(servicesArg)
const ruleCount = Number(rulesArg)
const port = Number(portArg)
const PER_SERVICE = 20
const REQUESTS_PER_SERVICE = Number(requestsArg)
const ROUNDS = 200
const gc = globalThis.gc!

const fleet = (s: number) => Array.from({ length: PER_SERVICE }, (_, j) => ({ ip: instanceIp(s, j), port, metadata: { version: laneOf(j) } }))
// Every gateway process of a run shares one dev server: a round's metadata names this process, or
// the next variant's re-registration would repeat the previous one's, change nothing and get no
// push (what stalled the first runs of this benchmark: every round waited out its 10 s).
const RUN = `${process.pid}.${Date.now()}`
const roundMark = (round: number): string => `${RUN}/${round}`
/** `big`'s list, instance `changed` carrying `round` in its metadata (what a re-registration changes). */
const bigList = (changed: number, round: number): Array<{ ip: string, port: number, metadata: Record<string, string> }> =>
  Array.from({ length: BIG_SIZE }, (_, j) => ({ ip: bigIp(j), port, metadata: (j === changed ? { version: laneOf(j), round: roundMark(round) } : { version: laneOf(j) }) as Record<string, string> }))

let namingConnects = 0
let staticDiscovery: StaticDiscovery | undefined
let nacos: NacosClient | undefined
let discovery: Discovery
if (mode === 'static') {
  const lists: Record<string, Array<{ ip: string, port: number, metadata: Record<string, string> }>> = {}
  for (let s = 0; s < services; s++) lists[serviceName(s)] = fleet(s)
  discovery = staticDiscovery = new StaticDiscovery(lists)
} else if (mode === 'agent') {
  discovery = new StaticDiscovery({})
} else {
  // Counts the naming connections set up (a reconnect drops the pushes in flight); SCALE_LOG=1
  // also prints the client's log on stderr (why a push did not come).
  const log = (level: string) => (obj: object, msg?: string) => {
    if (msg === 'nacos grpc connected' && (obj as { module?: string }).module === 'naming') namingConnects++
    if (process.env.SCALE_LOG === '1') console.error(`[gateway ${level}] ${msg ?? ''} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`)
  }
  nacos = new NacosClient({ serverAddr: addr!, transport: 'grpc', logger: { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') } })
  discovery = nacos.naming
}

// 1,000 rules as the rules benchmark builds them (header matches that miss, then a 10% split),
// and a lanes entry per service: stable v1, candidate v2 at 10 %.
let store: RuleStore | undefined
if (ruleCount > 0) {
  const rules: unknown[] = []
  for (let i = 0; i < ruleCount - 1; i++) rules.push({ name: `r${i}`, when: { headers: { [`x-feature-${i % 10}`]: { equals: `on-${i}` } } }, lane: `lane-${i % 50}` })
  rules.push({ name: 'canary', split: { weights: { v2: 10 } } })
  const lanes: Record<string, unknown> = {}
  for (let s = 0; s < services; s++) lanes[serviceName(s)] = { stable: 'v1', candidates: ['v2'], weights: { v1: 90, v2: 10 } }
  store = new RuleStore({ source: staticSource({ version: 1, user: { header: 'x-user-id' }, services: lanes, rules, default: 'v1' }) })
  await store.ready
  if (store.compiled === undefined) throw new Error('the RuleSet was refused')
}

const agent = new Agent()
const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1', lanes: (service) => serviceLanes(store?.compiled, service) })

let errors = 0
const jobs: string[] = []
for (let s = 0; s < services; s++) {
  for (let k = 0; k < REQUESTS_PER_SERVICE; k++) jobs.push(mode === 'agent' ? `http://${instanceIp(s, k % PER_SERVICE)}:${port}/` : `http://${serviceName(s)}/`)
}
const via: Dispatcher = mode === 'agent' ? agent : dispatcher
let next = 0
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < jobs.length) {
    const url = jobs[next++]!
    try {
      const res = await request(url, { dispatcher: via })
      await res.body.text()
      if (res.statusCode !== 200) errors++
    } catch {
      errors++
    }
  }
}))

let pools = 0
let instances = 0
for (let s = 0; s < services; s++) {
  const snap = dispatcher.snapshot(serviceName(s))
  pools += snap?.pools ?? 0
  instances += snap?.instances ?? 0
}

async function settle (): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 50))
  }
  return process.memoryUsage()
}
const mem = await settle()

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

const push: { table: number[], whole: number[], cpu: number[] } = { table: [], whole: [], cpu: [] }
let missed = 0
const form = { 'content-type': 'application/x-www-form-urlencoded' }
if (services > 0 && mode !== 'agent') {
  if (staticDiscovery !== undefined) staticDiscovery.set(BIG, bigList(-1, 0))
  // Subscribed before the dispatcher's listener (arrival) and after it (table in use).
  let arrived = 0
  let arrivedCpu = process.cpuUsage()
  let appliedCpu = 0
  let applied: (list: readonly Instance[]) => void = () => {}
  discovery.subscribe(BIG, () => { arrived = performance.now(); arrivedCpu = process.cpuUsage() })
  await (await request(`http://${BIG}/`, { dispatcher })).body.text()
  discovery.subscribe(BIG, ({ instances }) => {
    const cpu = process.cpuUsage(arrivedCpu)
    appliedCpu = (cpu.user + cpu.system) / 1000
    applied(instances as readonly Instance[])
  })
  if ((dispatcher.snapshot(BIG)?.instances ?? 0) !== BIG_SIZE) throw new Error(`big: ${dispatcher.snapshot(BIG)?.instances} instances`)
  for (let r = 1; r <= ROUNDS; r++) {
    const changed = (r * 7) % BIG_SIZE
    const list = bigList(changed, r)
    const seen = new Promise<number>((resolve) => {
      applied = (got) => { if (got.some((i) => i.metadata.round === roundMark(r))) resolve(performance.now()) }
    })
    const t0 = performance.now()
    if (staticDiscovery !== undefined) staticDiscovery.set(BIG, list)
    else {
      const body = new URLSearchParams({ serviceName: BIG, ip: list[changed]!.ip, port: String(port), ephemeral: 'false', metadata: JSON.stringify(list[changed]!.metadata) }).toString()
      const res = await request(`http://${addr}/nacos/v1/ns/instance`, { method: 'POST', body, headers: form })
      await res.body.text()
    }
    // A push that never comes (a reconnect on a loaded machine) is counted, not waited for forever.
    const t1 = await Promise.race([seen, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000).unref())])
    if (t1 === undefined) {
      missed++
      if (process.env.SCALE_LOG === '1') console.error(`[gateway] round ${r}: no push within 10 s; the client's list has it: ${(await discovery.instances(BIG)).some((i) => i.metadata.round === roundMark(r))}`)
      continue
    }
    push.table.push(t1 - arrived)
    push.cpu.push(appliedCpu)
    push.whole.push(t1 - t0)
    if ((dispatcher.snapshot(BIG)?.instances ?? 0) !== BIG_SIZE) throw new Error(`big: ${dispatcher.snapshot(BIG)?.instances} instances after round ${r}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

process.send!({
  mode,
  services,
  rules: ruleCount,
  instances,
  pools,
  errors,
  rss: mem.rss,
  heapUsed: mem.heapUsed,
  external: mem.external + mem.arrayBuffers,
  tableP50: pct(push.table, 50),
  tableP99: pct(push.table, 99),
  tableMax: Math.max(...push.table),
  cpuP50: pct(push.cpu, 50),
  cpuP99: pct(push.cpu, 99),
  wholeP50: pct(push.whole, 50),
  wholeP99: pct(push.whole, 99),
  missed,
  reconnects: Math.max(0, namingConnects - 1)
})
// Closing 4,000 pools and the client is not measured: the parent has what it needs.
setTimeout(() => process.exit(0), 5000).unref()
await dispatcher.close()
await agent.close()
await nacos?.close()
await store?.close()
process.disconnect?.()
