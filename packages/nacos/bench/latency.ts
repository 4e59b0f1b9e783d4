// Config publish -> listener and instance add/remove -> subscriber latency: @flowtag/nacos over
// gRPC and over HTTP, and the official Node SDK, side by side, same server, same run. Usage:
//   node packages/nacos/bench/latency.ts [configRounds=200] [instancePairs=25] [--write]
// Against a real Nacos: NACOS_SERVER_ADDR=host:port (HTTP v1 capable) runs it there instead.
import { cpus, loadavg } from 'node:os'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { NacosClient } from '../src/index.ts'
import { officialConfig, officialNaming, type OfficialHost } from '../test/fixtures/official-sdk.ts'

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const write = process.argv.includes('--write')
const configRounds = Number(args[0] ?? 200)
const instancePairs = Number(args[1] ?? 25)
const realAddr = process.env.NACOS_SERVER_ADDR

// The dev server with Nacos's production timings (500 ms push delay, 30 s long polls).
const dev = realAddr === undefined ? await startNacosDevServer({ port: 0, host: '127.0.0.1' }) : undefined
const addr = realAddr ?? `127.0.0.1:${dev?.port}`
const run = Date.now().toString(36)

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN
}
const fmt = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')

/** Wait until check() holds (polled every 2 ms; latencies are stamped in the callbacks, not here). */
async function until (check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs
  while (performance.now() < end) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 2))
  }
  return false
}

/** Each subscriber's views of the port set, stamped when its callback ran. */
type Views = Array<{ at: number; ports: Set<number> }>
const firstView = (views: Views, after: number, seen: (p: Set<number>) => boolean): number | undefined =>
  views.find((v) => v.at >= after && seen(v.ports))?.at

// ---- config ----
async function benchConfig () {
  const publisher = new NacosClient({ serverAddr: addr })
  const ours = new NacosClient({ serverAddr: addr, transport: 'http' })
  const grpc = new NacosClient({ serverAddr: addr, transport: 'grpc' })
  const theirs = officialConfig(addr, mkdtempSync(join(tmpdir(), 'nacos-bench-')))
  await theirs.ready()
  const dataId = `bench-cfg-${run}`
  let oursLast: string | undefined
  let theirsLast: string | undefined
  let grpcLast: string | undefined
  const grpcAt = new Map<string, number>()
  grpc.config.listen(dataId, 'BENCH', (c) => {
    grpcLast = c
    if (c !== undefined) grpcAt.set(c, performance.now())
  })
  const oursAt = new Map<string, number>()
  const theirsAt = new Map<string, number>()
  ours.config.listen(dataId, 'BENCH', (c) => {
    oursLast = c
    if (c !== undefined) oursAt.set(c, performance.now())
  })
  theirs.subscribe({ dataId, group: 'BENCH' }, (c) => {
    theirsLast = c
    theirsAt.set(c, performance.now())
  })
  // Warm up: both listeners established and seeing a first value.
  await publisher.config.publish(dataId, 'BENCH', 'warm')
  await until(() => oursLast === 'warm' && theirsLast === 'warm' && grpcLast === 'warm', 15_000)
  const lat = { ours: [] as number[], theirs: [] as number[], grpc: [] as number[], oursMissed: 0, theirsMissed: 0, grpcMissed: 0 }
  for (let i = 0; i < configRounds; i++) {
    const content = `v${i}`
    const t0 = performance.now()
    await publisher.config.publish(dataId, 'BENCH', content)
    await until(() => oursAt.has(content) && theirsAt.has(content) && grpcAt.has(content), 5000)
    const g = grpcAt.get(content)
    if (g === undefined) lat.grpcMissed++
    else lat.grpc.push(g - t0)
    const a = oursAt.get(content)
    const b = theirsAt.get(content)
    if (a === undefined) lat.oursMissed++
    else lat.ours.push(a - t0)
    if (b === undefined) lat.theirsMissed++
    else lat.theirs.push(b - t0)
  }
  theirs.close()
  await Promise.all([ours.close(), grpc.close(), publisher.close()])
  return lat
}

// ---- naming ----
async function benchNaming (oursFirst: boolean, pairs: number) {
  const registrar = new NacosClient({ serverAddr: addr })
  const ours = new NacosClient({ serverAddr: addr, transport: 'http' })
  const grpc = new NacosClient({ serverAddr: addr, transport: 'grpc' })
  const theirs = officialNaming(addr)
  await theirs.ready()
  const svc = `bench-svc-${run}-${oursFirst ? 'a' : 'b'}`
  const oursViews: Views = []
  const theirsViews: Views = []
  const grpcViews: Views = []
  grpc.naming.subscribe(svc, (c) => grpcViews.push({ at: performance.now(), ports: new Set(c.instances.map((i) => i.port)) }))
  await grpc.naming.instances(svc)
  // The server pushes to its subscribers one after another, first subscribed first: each client
  // goes first for half of the run.
  const subscribeOurs = async () => {
    ours.naming.subscribe(svc, (c) => oursViews.push({ at: performance.now(), ports: new Set(c.instances.map((i) => i.port)) }))
    await ours.naming.instances(svc)
  }
  const subscribeTheirs = async () => {
    theirs.subscribe(svc, (hosts: OfficialHost[]) => theirsViews.push({ at: performance.now(), ports: new Set(hosts.map((h) => h.port)) }))
    // Its subscribe() queries in the background and says nothing for an empty service: give it time.
    await new Promise((r) => setTimeout(r, 300))
  }
  if (oursFirst) await subscribeOurs()
  await subscribeTheirs()
  if (!oursFirst) await subscribeOurs()
  // Warm up with one instance both sides see.
  await registrar.naming.register(svc, { ip: '127.0.0.1', port: 5999 })
  await until(
    () => firstView(oursViews, 0, (p) => p.has(5999)) !== undefined && firstView(theirsViews, 0, (p) => p.has(5999)) !== undefined && firstView(grpcViews, 0, (p) => p.has(5999)) !== undefined,
    30_000
  )
  const lat = { ours: [] as number[], theirs: [] as number[], grpc: [] as number[], oursMissed: 0, theirsMissed: 0, grpcMissed: 0 }
  const measure = async (action: () => Promise<void>, seen: (ports: Set<number>) => boolean) => {
    // A quiet gap first: no push of an earlier event is still scheduled to land inside this one.
    await new Promise((r) => setTimeout(r, 700))
    const t0 = performance.now()
    await action()
    await until(() => firstView(oursViews, t0, seen) !== undefined && firstView(theirsViews, t0, seen) !== undefined && firstView(grpcViews, t0, seen) !== undefined, 15_000)
    const g = firstView(grpcViews, t0, seen)
    if (g === undefined) lat.grpcMissed++
    else lat.grpc.push(g - t0)
    const a = firstView(oursViews, t0, seen)
    const b = firstView(theirsViews, t0, seen)
    if (a === undefined) lat.oursMissed++
    else lat.ours.push(a - t0)
    if (b === undefined) lat.theirsMissed++
    else lat.theirs.push(b - t0)
  }
  for (let i = 0; i < pairs; i++) {
    const port = 6000 + i
    await measure(() => registrar.naming.register(svc, { ip: '127.0.0.1', port }), (p) => p.has(port))
    await measure(() => registrar.naming.deregister(svc, { ip: '127.0.0.1', port }), (p) => !p.has(port))
  }
  await registrar.naming.deregister(svc, { ip: '127.0.0.1', port: 5999 })
  await theirs.close()
  await Promise.all([ours.close(), grpc.close(), registrar.close()])
  return lat
}

const started = new Date()
const load = loadavg().map((n) => n.toFixed(1)).join(' / ')
const config = await benchConfig()
const first = await benchNaming(true, Math.ceil(instancePairs / 2))
const second = await benchNaming(false, Math.floor(instancePairs / 2))
const naming = {
  ours: [...first.ours, ...second.ours],
  theirs: [...first.theirs, ...second.theirs],
  grpc: [...first.grpc, ...second.grpc],
  grpcMissed: first.grpcMissed + second.grpcMissed,
  oursMissed: first.oursMissed + second.oursMissed,
  theirsMissed: first.theirsMissed + second.theirsMissed
}
await dev?.close()

const row = (name: string, xs: number[], missed: number) =>
  `| ${name} | ${xs.length} | ${fmt(percentile(xs, 50))} | ${fmt(percentile(xs, 99))} | ${fmt(Math.max(...xs))} | ${missed} |`
const ratio = (a: number[], b: number[], p: number) => fmt(percentile(a, p) / percentile(b, p)).replace(/$/, '×')

// One section per kind of target, so the dev-server and real-Nacos figures stand side by side.
const heading = realAddr === undefined ? '## Nacos client (@flowtag/nacos)' : '## Nacos client against a real Nacos (@flowtag/nacos)'
const section = `${heading}

\`${realAddr === undefined ? '' : 'NACOS_SERVER_ADDR=<addr> '}node packages/nacos/bench/latency.ts ${configRounds} ${instancePairs}\` — ${started.toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load average at start ${load}.
Target: ${realAddr === undefined ? 'the embedded dev server with Nacos production timings (500 ms push delay, 30 s long polls)' : `a real Nacos at ${realAddr}`}, loopback; all clients in one process.
Config: another client publishes ${configRounds} values one after another; latency is publish call → listener callback with that value, for our \`config.listen\` over gRPC (ConfigChangeNotifyRequest push) and over HTTP (one batched v1 long poll), and the official \`NacosConfigClient.subscribe\`.
Instances: another client registers then deregisters an instance, ${instancePairs} times (${instancePairs * 2} events, 700 ms apart); latency is the register/deregister call → the subscriber seeing the new list, for our \`naming.subscribe\` over gRPC (NotifySubscriberRequest push) and over HTTP (UDP push + 10 s poll), and the official \`NacosNamingClient.subscribe\`.

| config publish → listener | n | p50 ms | p99 ms | max ms | missed (>5 s) |
|---|---|---|---|---|---|
${row('@flowtag/nacos gRPC', config.grpc, config.grpcMissed)}
${row('@flowtag/nacos HTTP', config.ours, config.oursMissed)}
${row('official nacos 2.6.3', config.theirs, config.theirsMissed)}

| instance add/remove → subscriber | n | p50 ms | p99 ms | max ms | missed (>15 s) |
|---|---|---|---|---|---|
${row('@flowtag/nacos gRPC', naming.grpc, naming.grpcMissed)}
${row('@flowtag/nacos HTTP', naming.ours, naming.oursMissed)}
${row('official nacos 2.6.3', naming.theirs, naming.theirsMissed)}

Ratios (lower is better): gRPC/HTTP config p50 ${ratio(config.grpc, config.ours, 50)}, p99 ${ratio(config.grpc, config.ours, 99)}; gRPC/official config p50 ${ratio(config.grpc, config.theirs, 50)}, p99 ${ratio(config.grpc, config.theirs, 99)}; HTTP/official config p50 ${ratio(config.ours, config.theirs, 50)}, p99 ${ratio(config.ours, config.theirs, 99)}; instances gRPC/HTTP p50 ${ratio(naming.grpc, naming.ours, 50)}, p99 ${ratio(naming.grpc, naming.ours, 99)}; gRPC/official p50 ${ratio(naming.grpc, naming.theirs, 50)}, p99 ${ratio(naming.grpc, naming.theirs, 99)}.
${
  realAddr === undefined
    ? `gRPC config push goal on the dev server: p99 ≤ 20 ms — ${percentile(config.grpc, 99) <= 20 ? 'met' : 'missed'} (${fmt(percentile(config.grpc, 99))} ms).`
    : `gRPC config push goal on real Nacos: within 20 ms of the server's own delay, taken as our HTTP long poll's (answered after the same dump): p50 ${fmt(percentile(config.grpc, 50) - percentile(config.ours, 50))} ms, p99 ${fmt(percentile(config.grpc, 99) - percentile(config.ours, 99))} ms apart.`
}${realAddr === undefined
? ''
: `
A real Nacos answers held long polls only after its own change-dump task has run (about 100 ms after a publish) and pushes instance changes after its push delay, so the server bounds both clients alike here.`}
`

process.stdout.write(`${section}\n`)
if (write) {
  const file = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
  const text = readFileSync(file, 'utf8')
  const start = text.indexOf(heading)
  let next: number
  if (start < 0) writeFileSync(file, `${text.trimEnd()}\n\n${section}`)
  else {
    next = text.indexOf('\n## ', start + 1)
    writeFileSync(file, text.slice(0, start) + section + (next < 0 ? '' : text.slice(next)))
  }
}
