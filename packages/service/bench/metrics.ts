/**
 * The cost of the per-lane metrics (what a canary judges) on the edge and on an outbound hop:
 * the preset with `metrics: false` and no MeterProvider, against the preset recording
 * `http.server.request.duration` (+ `http.client.request.duration` and counters on the hop)
 * into the OpenTelemetry SDK with a Prometheus exporter, as the demo apps do. Each server in its
 * own process, autocannon in another, an upstream in a third; the Nacos dev server in this one.
 * Writes its section in the root BENCHMARKS.md.
 *
 *   node bench/metrics.ts [--rounds 6] [--seconds 2] [--connections 32] [--no-write]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { firstLine, loadAverage, machine, median, numberArg, writeSection } from '@flowtag/test-kit/bench'

const self = fileURLToPath(import.meta.url)
const benchmarksFile = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
const HEADING = `## Per-lane metrics cost (@flowtag/service, @flowtag/outbound) on Node ${process.versions.node.split('.')[0]}`
const VARIANTS = ['edge-off', 'edge-on', 'hop-off', 'hop-on'] as const
type Variant = typeof VARIANTS[number]
interface Measurement { rps: number, p99: number, errors: number, cpuUs: number }

const RULES = {
  version: 1,
  user: { header: 'x-user-id' },
  services: { upstream: { stable: 'v1', candidates: ['v2'] } },
  rules: [{ name: 'canary', split: { key: { header: 'x-user-id' }, weights: { v2: 10 }, rest: 'v1' } }],
  default: 'v1'
}

async function server (variant: Variant, nacosAddr: string): Promise<void> {
  const on = variant.endsWith('-on')
  if (on) {
    const { metrics } = await import('@opentelemetry/api')
    const { MeterProvider } = await import('@opentelemetry/sdk-metrics')
    const name = '@opentelemetry/exporter-prometheus'
    const { PrometheusExporter } = await import(name) as typeof import('@opentelemetry/exporter-prometheus')
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] }))
  }
  const { default: Fastify } = await import('fastify')
  const { fastifyFlowTagService } = await import('../src/fastify.ts')
  const app = Fastify({ logger: false })
  const hop = variant.startsWith('hop')
  await app.register(fastifyFlowTagService, {
    service: hop ? 'hop' : 'edge',
    mode: 'edge',
    nacos: { serverAddr: nacosAddr },
    rules: RULES,
    registration: false,
    metrics: on,
    outbound: { stableLane: 'v1' }
  })
  if (hop) {
    app.get('/', async (request) => {
      const res = await app.flowtag.fetch('http://upstream/')
      return { lane: request.flow.tag ?? null, upstream: await res.text() }
    })
  } else {
    app.get('/', async (request) => ({ lane: request.flow.tag ?? null }))
  }
  app.get('/__cpu', async () => process.cpuUsage())
  await app.listen({ port: 0, host: '127.0.0.1' })
  if (hop) await app.flowtag.discovery.instances('upstream') // warm the cache before measuring
  const address = app.server.address()
  process.stdout.write(`LISTENING ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

function upstream (): void {
  const srv = createServer((_req, res) => { res.end('ok') })
  srv.listen(0, '127.0.0.1', () => {
    const a = srv.address()
    process.stdout.write(`LISTENING ${typeof a === 'object' && a !== null ? a.port : 0}\n`)
  })
  process.on('SIGTERM', () => { srv.close(); process.exit(0) })
}

async function load (ports: Record<Variant, string>, rounds: number, seconds: number, connections: number): Promise<void> {
  type Result = { requests: { average: number, total: number }, latency: { p99: number }, errors: number, non2xx: number }
  const name = 'autocannon'
  const { default: autocannon } = await import(name) as { default: (opts: object) => Promise<Result> }
  let n = 0
  const requests = [{ setupRequest: (req: { headers?: Record<string, string> }) => { req.headers = { ...req.headers, 'x-user-id': `user-${n++ % 10000}` }; return req } }]
  const url = (v: Variant) => `http://127.0.0.1:${ports[v]}/`
  for (const v of VARIANTS) await autocannon({ url: url(v), connections, duration: 1, requests })
  const cpu = async (v: Variant) => { const u = await (await fetch(`${url(v)}__cpu`)).json() as { user: number, system: number }; return u.user + u.system }
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[(i + r) % VARIANTS.length]!
      const before = await cpu(v)
      const res = await autocannon({ url: url(v), connections, duration: seconds, requests })
      const cpuUs = (await cpu(v) - before) / Math.max(1, res.requests.total)
      process.stdout.write(JSON.stringify({ round: r, variant: v, rps: res.requests.average, p99: res.latency.p99, errors: res.errors + res.non2xx, cpuUs }) + '\n')
    }
  }
  process.stdout.write('DONE\n')
}

function child (args: string[]): ChildProcess {
  return spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
}

async function stop (cp: ChildProcess): Promise<void> {
  cp.kill('SIGTERM')
  await new Promise((resolve) => cp.exitCode !== null ? resolve(null) : cp.once('exit', resolve))
}

async function main (): Promise<void> {
  const rounds = numberArg('--rounds', 6)
  const seconds = numberArg('--seconds', 2)
  const connections = numberArg('--connections', 32)
  const loadStart = loadAverage()
  const { startNacosDevServer } = await import('@flowtag/nacos-dev-server')
  const { NacosClient } = await import('@flowtag/nacos')
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1' })
  const nacos = new NacosClient({ serverAddr: dev.address })
  const up = child(['upstream'])
  const children: ChildProcess[] = [up]
  const results = new Map<Variant, Measurement[]>(VARIANTS.map((v) => [v, []]))
  try {
    const upPort = Number((await firstLine(up, 'LISTENING ')).split(' ')[1])
    await nacos.naming.register('upstream', { ip: '127.0.0.1', port: upPort, metadata: { version: 'v1' } })
    const ports: Record<string, string> = {}
    for (const v of VARIANTS) {
      const c = child(['server', v, dev.address])
      children.push(c)
      ports[v] = (await firstLine(c, 'LISTENING ')).split(' ')[1]!
    }
    const gen = child(['load', JSON.stringify(ports), String(rounds), String(seconds), String(connections)])
    children.push(gen)
    await new Promise<void>((resolve, reject) => {
      let buf = ''
      gen.stdout!.on('data', (d: Buffer) => {
        buf += d
        let nl: number
        while ((nl = buf.indexOf('\n')) !== -1) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          if (line === 'DONE') { resolve(); return }
          if (!line.startsWith('{')) continue
          const m = JSON.parse(line) as Measurement & { round: number, variant: Variant }
          results.get(m.variant)!.push(m)
          console.log(`round ${m.round + 1} ${m.variant.padEnd(9)} ${m.rps.toFixed(0).padStart(7)} req/s  ${m.cpuUs.toFixed(1)} us cpu/req  p99 ${m.p99} ms  errors ${m.errors}`)
        }
      })
      gen.once('exit', (code) => code === 0 ? resolve() : reject(new Error(`load generator exited with ${code}`)))
    })
  } finally {
    for (const c of children) await stop(c)
    await nacos.close()
    await dev.close()
  }
  const loadEnd = loadAverage()
  const pair = (off: Variant, onV: Variant, what: string) => {
    const a = results.get(off)!
    const b = results.get(onV)!
    const tput = b.map((m, i) => m.rps / a[i]!.rps)
    const cpu = b.map((m, i) => a[i]!.cpuUs / m.cpuUs)
    return {
      row: `| ${what} | ${a.map((m) => m.rps.toFixed(0)).join(' / ')} | ${b.map((m) => m.rps.toFixed(0)).join(' / ')} | **${median(tput).toFixed(3)}x** (${tput.map((x) => x.toFixed(2)).join(' / ')}) | ` +
        `${median(a.map((m) => m.cpuUs)).toFixed(1)} → ${median(b.map((m) => m.cpuUs)).toFixed(1)} | **${median(cpu).toFixed(3)}x** | ${Math.max(...a.map((m) => m.p99))} → ${Math.max(...b.map((m) => m.p99))} | ${[...a, ...b].reduce((s, m) => s + m.errors, 0)} |`,
      cpu: median(cpu),
      tput: median(tput),
      spread: Math.max(...cpu) - Math.min(...cpu)
    }
  }
  const edge = pair('edge-off', 'edge-on', 'edge (tagging by 1 split rule)')
  const hop = pair('hop-off', 'hop-on', 'edge + outbound hop to an upstream')
  const section = [
    HEADING,
    '',
    `Run \`node packages/service/bench/metrics.ts\` (${new Date().toISOString().slice(0, 10)}, ${machine()}; load average ${loadStart} at start, ${loadEnd} at the end: the machine is shared with other engineers' jobs).`,
    `The @flowtag/service preset in edge mode, each variant its own process, autocannon in another (${connections} connections, one 1 s warm-up each, then ${rounds} rounds of ${seconds} s per variant, order rotated each round; each "on" figure is divided by its "off" twin in the same round). ` +
      '"off": `metrics: false` and no MeterProvider (the instruments are the API\'s no-ops). "on": the OpenTelemetry SDK MeterProvider with the Prometheus exporter, as the demo apps run it: `http.server.request.duration` (seconds, with `flowtag.lane`, method, route, status), and on the hop also `http.client.request.duration` and the outbound request counter, per lane and instance. ' +
      'The hop variants call a plain Node upstream (its own process) found through the Nacos dev server by `app.flowtag.fetch`.',
    '',
    '| path | off req/s per round | on req/s per round | throughput on/off (median, per round) | server CPU µs/request off → on (medians) | CPU-cost ratio off/on (median) | worst p99 ms off → on | errors |',
    '|---|---|---|---|---|---|---|---|',
    edge.row,
    hop.row,
    '',
    `Reading: the median CPU-cost ratio says recording the per-lane metrics costs ${((1 / edge.cpu - 1) * 100).toFixed(1)}% more server CPU per request on the edge and ${((1 / hop.cpu - 1) * 100).toFixed(1)}% on the edge + hop path (1.0 = free). ` +
      (Math.max(edge.spread, hop.spread) > 0.1
        ? `But the per-round CPU ratios spread over ${edge.spread.toFixed(2)} (edge) and ${hop.spread.toFixed(2)} (hop), more than the effect being measured: single rounds cannot bound the cost, only the median of several (and more rounds) can. `
        : `The per-round CPU ratios stay within ${Math.max(edge.spread, hop.spread).toFixed(2)} of each other, so the medians are a fair reading. `) +
      'Where the cost is: the OTel SDK hashes every data point\'s attributes (sorted keys, JSON) on each record once a reader is installed; the preset records 5-6 attributes per request (lane, instance lane, method, route, status; error.type on failures).',
    ''
  ].join('\n')
  console.log('\n' + section)
  if (process.argv.includes('--no-write')) return
  await writeSection(benchmarksFile, section, { start: HEADING })
  console.log(`written to ${benchmarksFile}`)
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'server') await server(rest[0] as Variant, rest[1]!)
else if (mode === 'upstream') upstream()
else if (mode === 'load') await load(JSON.parse(rest[0]!), Number(rest[1]), Number(rest[2]), Number(rest[3]))
else await main()
