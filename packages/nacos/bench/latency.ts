// Config publish -> listener and instance add/remove -> subscriber latency: @flowtag/nacos over
// gRPC and over HTTP, and the official Node SDK, side by side, same server, same run. Usage:
//   node packages/nacos/bench/latency.ts [configRounds=200] [instancePairs=25] [--write]
// Against a real Nacos: NACOS_SERVER_ADDR=host:port (HTTP v1 capable) runs it there instead.
import { cpus, loadavg } from 'node:os'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { GrpcConnection } from '../src/grpc-connection.ts'
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
/** `alone`: only the gRPC listener (and the bare connection) in the process, no HTTP or official listener. */
async function benchConfig (alone = false, rounds = configRounds) {
  const publisher = new NacosClient({ serverAddr: addr })
  const ours = alone ? undefined : new NacosClient({ serverAddr: addr, transport: 'http' })
  const grpc = new NacosClient({ serverAddr: addr, transport: 'grpc' })
  const theirs = alone ? undefined : officialConfig(addr, mkdtempSync(join(tmpdir(), 'nacos-bench-')))
  await theirs?.ready()
  const dataId = `bench-cfg-${run}${alone ? '-alone' : ''}`
  // Where the gRPC time goes: a bare config connection listening to the same key stamps when the
  // server's ConfigChangeNotifyRequest arrives (the client's listener is one ConfigQueryRequest later).
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))]
  let pushedAt: number | undefined
  const silent = { debug () {}, info () {}, warn () {}, error () {} }
  const raw = new GrpcConnection({ host, port, module: 'config', namespace: '', timeoutMs: 5000, logger: silent, handlers: { ConfigChangeNotifyRequest: () => { pushedAt ??= performance.now(); return {} } }, onClose: () => {} })
  await raw.open()
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
  ours?.config.listen(dataId, 'BENCH', (c) => {
    oursLast = c
    if (c !== undefined) oursAt.set(c, performance.now())
  })
  theirs?.subscribe({ dataId, group: 'BENCH' }, (c: string) => {
    theirsLast = c
    theirsAt.set(c, performance.now())
  })
  // Warm up: both listeners established and seeing a first value.
  await publisher.config.publish(dataId, 'BENCH', 'warm')
  await until(() => (alone || (oursLast === 'warm' && theirsLast === 'warm')) && grpcLast === 'warm', 15_000)
  // How long callbacks wait for the event loop this process shares (the tail's other source).
  const loopDelay = monitorEventLoopDelay({ resolution: 5 })
  loopDelay.enable()
  await raw.request('ConfigBatchListenRequest', { listen: true, configListenContexts: [{ dataId, group: 'BENCH', md5: '', tenant: '' }] }, {})
  const lat = { ours: [] as number[], theirs: [] as number[], grpc: [] as number[], oursMissed: 0, theirsMissed: 0, grpcMissed: 0, published: [] as number[], pushed: [] as number[], query: [] as number[], loopP99: 0, loopMax: 0 }
  for (let i = 0; i < rounds; i++) {
    const content = `v${i}`
    pushedAt = undefined
    const t0 = performance.now()
    await publisher.config.publish(dataId, 'BENCH', content)
    lat.published.push(performance.now() - t0)
    await until(() => (alone || (oursAt.has(content) && theirsAt.has(content))) && grpcAt.has(content) && pushedAt !== undefined, 5000)
    const g = grpcAt.get(content)
    if (g === undefined) lat.grpcMissed++
    else lat.grpc.push(g - t0)
    if (pushedAt !== undefined) {
      lat.pushed.push(pushedAt - t0)
      if (g !== undefined) lat.query.push(g - pushedAt)
    }
    if (alone) continue
    const a = oursAt.get(content)
    const b = theirsAt.get(content)
    if (a === undefined) lat.oursMissed++
    else lat.ours.push(a - t0)
    if (b === undefined) lat.theirsMissed++
    else lat.theirs.push(b - t0)
  }
  loopDelay.disable()
  lat.loopP99 = loopDelay.percentile(99) / 1e6
  lat.loopMax = loopDelay.max / 1e6
  theirs?.close()
  raw.close()
  await Promise.all([ours?.close(), grpc.close(), publisher.close()])
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
// The same gRPC path with nothing else listening in the process: what is left of the tail is the
// machine's (the other listeners' work shares this event loop in the run above).
const alone = await benchConfig(true)
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

Where the gRPC config time goes (same rounds): the publish call itself (HTTP v1, answered after the server has pushed) p50 ${fmt(percentile(config.published, 50))} / p99 ${fmt(percentile(config.published, 99))} ms; publish → ConfigChangeNotifyRequest on a bare connection p50 ${fmt(percentile(config.pushed, 50))} / p99 ${fmt(percentile(config.pushed, 99))} ms; that push → our listener (one ConfigQueryRequest) p50 ${fmt(percentile(config.query, 50))} / p99 ${fmt(percentile(config.query, 99))} ms; event-loop delay of this process (all clients and the server share it) p99 ${fmt(config.loopP99)} / max ${fmt(config.loopMax)} ms.
The gRPC listener alone in the process (no HTTP or official listener, ${alone.grpc.length} rounds right after): publish → listener p50 ${fmt(percentile(alone.grpc, 50))} / p99 ${fmt(percentile(alone.grpc, 99))} ms (push p50 ${fmt(percentile(alone.pushed, 50))} / p99 ${fmt(percentile(alone.pushed, 99))}, push → listener p50 ${fmt(percentile(alone.query, 50))} / p99 ${fmt(percentile(alone.query, 99))}, publish call p50 ${fmt(percentile(alone.published, 50))} / p99 ${fmt(percentile(alone.published, 99))}; event-loop delay p99 ${fmt(alone.loopP99)} / max ${fmt(alone.loopMax)}).

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
