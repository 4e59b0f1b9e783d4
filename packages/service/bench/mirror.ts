/**
 * The cost of a 10% mirror (shadow lanes, issue 24) to the primary: the edge (the Fastify preset
 * in edge mode, service `orders`) with a RuleSet without a mirror, against the same edge whose
 * RuleSet mirrors 10% of its GETs into lane v2 (`services.orders.mirror`). The copies go to an
 * `orders` instance of lane v2 (a plain Node server, its own process, registered in the Nacos dev
 * server of this process); their own work there is not counted. The edge's work of capturing the
 * answer, sending the copy, reading its answer and comparing is counted (it runs in the edge's
 * process). Each edge its own process, autocannon in another; two paths: the edge answering by
 * itself, and the edge calling an upstream (v1) per request through `app.flowtag.fetch`.
 * Writes its section in the root BENCHMARKS.md.
 *
 *   node bench/mirror.ts [--rounds 5] [--seconds 10] [--connections 32] [--no-write] [--cpu-prof <dir>]
 *
 * `--cpu-prof <dir>`: the edges run with `--cpu-prof` and write their profiles there.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import type { RuleSetInput } from '@flowtag/rules'
import { firstLine, loadAverage, machine, median, numberArg, writeSection } from '@flowtag/test-kit/bench'

const self = fileURLToPath(import.meta.url)
const benchmarksFile = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
const HEADING = '## Mirror (shadow lane) overhead on the primary (@flowtag/service)'
const VARIANTS = ['edge-plain', 'edge-mirror', 'hop-plain', 'hop-mirror'] as const
type Variant = typeof VARIANTS[number]
interface Mirrored { sent: number, dropped: number, timeout: number, failed: number, fallback: number, compared: number, same: number }
interface Measurement { rps: number, p99: number, errors: number, cpuUs: number, requests: number, mirrored: Mirrored }

function rules (mirror: boolean): RuleSetInput {
  return {
    version: 1,
    user: { header: 'x-user-id' },
    services: {
      orders: { stable: 'v1', candidates: ['v2'], ...(mirror ? { mirror: { lane: 'v2', percent: 10 } } : {}) },
      upstream: { stable: 'v1' }
    },
    rules: [],
    default: 'v1'
  }
}

async function edge (variant: Variant, nacosAddr: string): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { fastifyFlowTagService } = await import('../src/fastify.ts')
  type Pair = import('../src/mirror.ts').ShadowPair
  // No @flowtag/shadow on main when this was written: a comparer that counts the pairs and
  // whether status and body are equal (one Buffer compare per pair).
  const counted = { compared: 0, same: 0 }
  const comparer = {
    compare (pair: Pair) {
      counted.compared++
      if (pair.primary.status === pair.mirror.status && pair.primary.body.equals(pair.mirror.body)) counted.same++
    }
  }
  const app = Fastify({ logger: false })
  const hop = variant.startsWith('hop')
  await app.register(fastifyFlowTagService, {
    service: 'orders',
    version: 'v1',
    mode: 'edge',
    nacos: { serverAddr: nacosAddr },
    rules: rules(variant.endsWith('-mirror')),
    registration: false,
    metrics: false,
    outbound: { stableLane: 'v1' },
    shadow: { comparer }
  })
  if (hop) {
    app.get('/', async () => {
      const res = await app.flowtag.fetch('http://upstream/')
      return { order: 1, upstream: await res.text() }
    })
  } else {
    app.get('/', async () => ({ order: 1 }))
  }
  app.get('/__cpu', async () => process.cpuUsage())
  app.get('/__mirrored', async () => ({ ...app.flowtag.mirror.stats, ...counted }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.flowtag.discovery.instances('orders') // warm the caches before measuring
  if (hop) await app.flowtag.discovery.instances('upstream')
  const address = app.server.address()
  process.stdout.write(`LISTENING ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

/** The upstream v1 and the `orders` v2 instance: plain Node servers (their work is not measured). */
function plain (answer: string): void {
  const srv = createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end(answer) })
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
  const mirrored = async (v: Variant) => await (await fetch(`${url(v)}__mirrored`)).json() as Mirrored
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[(i + r) % VARIANTS.length]!
      const m0 = await mirrored(v)
      const before = await cpu(v)
      const res = await autocannon({ url: url(v), connections, duration: seconds, requests })
      const cpuUs = (await cpu(v) - before) / Math.max(1, res.requests.total)
      // copies still in flight finish within a few ms; let them land before reading the counts
      await new Promise((resolve) => setTimeout(resolve, 200))
      const m1 = await mirrored(v)
      const delta = Object.fromEntries(Object.keys(m1).map((k) => [k, m1[k as keyof Mirrored] - m0[k as keyof Mirrored]])) as unknown as Mirrored
      process.stdout.write(JSON.stringify({ round: r, variant: v, rps: res.requests.average, p99: res.latency.p99, errors: res.errors + res.non2xx, cpuUs, requests: res.requests.total, mirrored: delta }) + '\n')
    }
  }
  process.stdout.write('DONE\n')
}

function child (args: string[], execArgv: string[] = []): ChildProcess {
  return spawn(process.execPath, [...execArgv, self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
}

async function stop (cp: ChildProcess): Promise<void> {
  cp.kill('SIGTERM')
  await new Promise((resolve) => cp.exitCode !== null ? resolve(null) : cp.once('exit', resolve))
}

async function main (): Promise<void> {
  const rounds = numberArg('--rounds', 5)
  const seconds = numberArg('--seconds', 10)
  const connections = numberArg('--connections', 32)
  const profDir = process.argv.indexOf('--cpu-prof')
  const loadStart = loadAverage()
  const { startNacosDevServer } = await import('@flowtag/nacos-dev-server')
  const { NacosClient } = await import('@flowtag/nacos')
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1' })
  const nacos = new NacosClient({ serverAddr: dev.address })
  const up = child(['plain', '"ok"'])
  const v2 = child(['plain', '{"order":1}'])
  const children: ChildProcess[] = [up, v2]
  const results = new Map<Variant, Measurement[]>(VARIANTS.map((v) => [v, []]))
  try {
    const upPort = Number((await firstLine(up, 'LISTENING ')).split(' ')[1])
    const v2Port = Number((await firstLine(v2, 'LISTENING ')).split(' ')[1])
    await nacos.naming.register('upstream', { ip: '127.0.0.1', port: upPort, metadata: { version: 'v1' } })
    await nacos.naming.register('orders', { ip: '127.0.0.1', port: v2Port, metadata: { version: 'v2' } })
    const ports: Record<string, string> = {}
    for (const v of VARIANTS) {
      const c = child(['edge', v, dev.address], profDir === -1 ? [] : ['--cpu-prof', '--cpu-prof-dir', process.argv[profDir + 1]!, '--cpu-prof-name', `${v}.cpuprofile`])
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
          console.log(`round ${m.round + 1} ${m.variant.padEnd(11)} ${m.rps.toFixed(0).padStart(7)} req/s  ${m.cpuUs.toFixed(1)} us cpu/req  p99 ${m.p99} ms  errors ${m.errors}  mirrored ${JSON.stringify(m.mirrored)}`)
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
    const cpu = b.map((m, i) => m.cpuUs / a[i]!.cpuUs)
    const p99 = b.map((m, i) => m.p99 / Math.max(1, a[i]!.p99))
    const tput = b.map((m, i) => m.rps / a[i]!.rps)
    const sum = (k: keyof Mirrored) => b.reduce((s, m) => s + m.mirrored[k], 0)
    const primaries = b.reduce((s, m) => s + m.requests, 0)
    return {
      row: `| ${what} | ${a.map((m) => m.rps.toFixed(0)).join(' / ')} | ${b.map((m) => m.rps.toFixed(0)).join(' / ')} | ${median(tput).toFixed(3)}x | ` +
        `${median(a.map((m) => m.cpuUs)).toFixed(1)} → ${median(b.map((m) => m.cpuUs)).toFixed(1)} | **${median(cpu).toFixed(3)}x** (${cpu.map((x) => x.toFixed(2)).join(' / ')}) | ` +
        `${a.map((m) => m.p99).join(' / ')} → ${b.map((m) => m.p99).join(' / ')} | **${median(p99).toFixed(3)}x** | ` +
        `${sum('sent')} (${(sum('sent') / Math.max(1, primaries) * 100).toFixed(1)}%), ${sum('compared')} compared, ${sum('dropped')} dropped, ${sum('timeout') + sum('failed')} failed, ${sum('fallback')} fallback | ${[...a, ...b].reduce((s, m) => s + m.errors, 0)} |`,
      cpu: median(cpu),
      p99: median(p99),
      spread: Math.max(...cpu) - Math.min(...cpu),
      // the edge's CPU for one copy: the added CPU per primary over the share of primaries copied
      perCopy: (median(b.map((m) => m.cpuUs)) - median(a.map((m) => m.cpuUs))) / Math.max(1e-9, sum('sent') / Math.max(1, primaries)),
      plainUs: median(a.map((m) => m.cpuUs)),
      // the same effect read the other way (median CPU mirror / median CPU plain): when the two
      // readings fall on both sides of 1.05, the noise decides, not the mirror
      ofMedians: median(b.map((m) => m.cpuUs)) / median(a.map((m) => m.cpuUs))
    }
  }
  const alone = pair('edge-plain', 'edge-mirror', 'edge answering by itself')
  const hop = pair('hop-plain', 'hop-mirror', 'edge + a call to an upstream')
  const verdict = (x: number) => x <= 1.05 ? 'within' : 'over'
  const cpuVerdict = (r: { cpu: number, ofMedians: number }) => (r.cpu <= 1.05) === (r.ofMedians <= 1.05)
    ? `${verdict(r.cpu)}; ${r.ofMedians.toFixed(3)}× as the ratio of the medians`
    : `${verdict(r.cpu)} by the median of the per-round ratios, but ${r.ofMedians.toFixed(3)}× as the ratio of the medians: not settled at this noise`
  const worst = Math.max(hop.cpu, hop.ofMedians)
  const section = [
    HEADING,
    '',
    `Run \`node packages/service/bench/mirror.ts\` (${new Date().toISOString().slice(0, 10)}, ${machine()}; load average ${loadStart} at start, ${loadEnd} at the end: the machine is shared with other engineers' jobs).`,
    `The @flowtag/service Fastify preset in edge mode (service \`orders\`, a fixed RuleSet, \`metrics: false\`), each variant its own process, autocannon in another (${connections} connections, one 1 s warm-up each, then ${rounds} rounds of ${seconds} s per variant, order rotated each round; each mirror figure is divided by its plain twin of the same round, and the median of those ratios is the result). ` +
      '"plain": the RuleSet without a mirror. "mirror": the same with `services.orders.mirror = { lane: \'v2\', percent: 10 }`, so one GET in ten is copied, after the answer is sent, to the `orders` instance of lane v2 (a plain Node server in its own process, found through the Nacos dev server), default `shadow` caps (16 in flight, 5 s). ' +
      'The comparer is not @flowtag/shadow (not on main when this ran) but one that counts the pairs and compares status and body bytes. ' +
      'CPU per primary request is the edge process\'s CPU (user + system) over the round divided by the primary requests autocannon completed: it includes the edge\'s own mirror work (capturing the answer, sending the copy through the lane dispatcher, reading its answer, comparing) and excludes the copy\'s work in the v2 process. p99 is autocannon\'s, of the primary requests only (autocannon reports whole milliseconds).',
    '',
    '| path | plain req/s per round | mirror req/s per round | throughput mirror/plain (median) | edge CPU µs per primary request plain → mirror (medians) | CPU ratio mirror/plain (median, per round) | primary p99 ms per round plain → mirror | p99 ratio (median) | copies (share of primaries), outcomes | errors |',
    '|---|---|---|---|---|---|---|---|---|---|',
    alone.row,
    hop.row,
    '',
    `Reading: against the target of issue 24 (≤ 1.05× on both), the CPU per primary request is ${alone.cpu.toFixed(3)}× (${cpuVerdict(alone)}) on the edge answering by itself and ${hop.cpu.toFixed(3)}× (${cpuVerdict(hop)}) on the edge calling an upstream; the primary's p99 is ${alone.p99.toFixed(3)}× (${verdict(alone.p99)}) and ${hop.p99.toFixed(3)}× (${verdict(hop.p99)}). ` +
      (Math.max(alone.spread, hop.spread) > 0.1
        ? `The per-round CPU ratios spread over ${alone.spread.toFixed(2)} (alone) and ${hop.spread.toFixed(2)} (hop): the medians are the figures, single rounds say little. `
        : `The per-round CPU ratios stay within ${Math.max(alone.spread, hop.spread).toFixed(2)} of each other. `) +
      `Where it goes (\`--cpu-prof\` of the edges): a copy is one more outbound request made by the edge (the lane dispatcher, undici, the socket write of the request, the parse of the answer), of the same order as a call onward: ~${alone.perCopy.toFixed(0)} µs (alone) and ~${hop.perCopy.toFixed(0)} µs (hop) of edge CPU per copy (the added CPU over the share copied, so as noisy as the medians), against ~${(hop.plainUs - alone.plainUs).toFixed(0)} µs for the hop's own call onward; capturing the answer and the comparer's byte compare are small beside it in the profile. ` +
      (Math.max(alone.perCopy, hop.perCopy) > 1.5 * (hop.plainUs - alone.plainUs)
        ? 'A copy costing more than a call onward is not explained by the profile; a likely part (not verified) is that the v2 process works on the same 2 cores in the mirror rounds, so the edge serves fewer requests per event-loop turn. '
        : '') +
      'That sets the floor: at 10%, ≤ 1.05× needs a primary whose own CPU is at least twice a copy\'s (0.1 × copy ≤ 0.05 × primary), more than an edge that only answers or makes one light call. The added CPU scales with `percent`: ' +
      (worst <= 1.05 ? 'on the hop path 10% stays within 1.05× by both readings. ' : `taking the worse of the two readings on the hop path (${worst.toFixed(3)}×), ${(Math.floor(5 / ((worst - 1) * 10) * 10) / 10).toFixed(1)}% or less would stay within 1.05×. `) +
      'The p99s are measured at saturation (the edge at full CPU), where any added CPU becomes queueing, and the v2 process answering the copies shares the 2 cores with the edge in the mirror rounds only (in production it runs elsewhere): on this machine they are upper bounds, not the latency cost at a normal load. ' +
      'Saturated, copies wait on the event loop and the 16-copy cap drops some (counted `dropped`): the cap doing its job, no primary failed. ' +
      'Found on the way: each copy\'s `AbortSignal.timeout` fired `timeoutMs` after the copy had settled (an abort event and a DOMException per copy, ~1.5% of the edge\'s CPU in the first profile); the mirror now clears its own timer when the copy settles.',
    ''
  ].join('\n')
  console.log('\n' + section)
  if (process.argv.includes('--no-write')) return
  await writeSection(benchmarksFile, section, { start: HEADING })
  console.log(`written to ${benchmarksFile}`)
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'edge') await edge(rest[0] as Variant, rest[1]!)
else if (mode === 'plain') plain(rest[0]!)
else if (mode === 'load') await load(JSON.parse(rest[0]!), Number(rest[1]), Number(rest[2]), Number(rest[3]))
else await main()
