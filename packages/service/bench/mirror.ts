/**
 * The cost of a 10% mirror (shadow lanes, issue 24) to the primary. Three edges (the Fastify preset
 * in edge mode, service `orders`), each its own process:
 * - plain: a RuleSet without a mirror;
 * - copy: the same, plus the same share of GETs (10%) sent after the answer as ordinary lane calls
 *   to the same v2 instance (`app.flowtag.dispatcher` in a flow of lane v2, the answer read):
 *   no capture, no comparer, no shadow marker. copy − plain is the mirrored call's own work;
 * - mirror: `services.orders.mirror = { lane: 'v2', percent: 10 }` with @flowtag/shadow's comparer
 *   (learned noise: it asks for the secondary copies to lane v1 it needs). mirror − copy is the
 *   mirror machinery's own cost.
 * Each answer has a field that differs between any two answers (`at`, the time in ms), so pairs
 * are compared as JSON and the comparer learns it as noise, as it would a timestamp or an id.
 * The copies' targets (`orders` v2, and v1 for the secondaries) are plain Node servers in another
 * process; their work is not counted. Two paths: the edge answering by itself, and the edge calling
 * an upstream (v1) per request through `app.flowtag.fetch`. Two loads: saturation (autocannon,
 * closed loop) and a fixed rate below it (an open-loop generator at `--rate` of the plain edge's
 * median saturated throughput of the same run, a path's three edges at once). Writes its section in
 * the root BENCHMARKS.md.
 *
 *   node bench/mirror.ts [--rounds 5] [--seconds 8] [--connections 32] [--rate 0.15] [--no-write] [--cpu-prof <dir>] [--only edge|hop]
 *   node bench/mirror.ts --rates edge=250,hop=50 [...]   (the fixed rate only, at these req/s)
 *   node bench/mirror.ts --from-log <its output> --seconds S [--fixed-seconds S]   (the section again from a run's lines)
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
const ALL_VARIANTS = ['edge-plain', 'edge-copy', 'edge-mirror', 'hop-plain', 'hop-copy', 'hop-mirror'] as const
type Variant = typeof ALL_VARIANTS[number]
type Phase = 'saturated' | 'fixed'
interface Mirrored { sent: number, dropped: number, timeout: number, failed: number, fallback: number, compared: number, secondaries: number, diverged: number, learning: number }
interface Measurement { round: number, phase: Phase, variant: Variant, rps: number, p99: number, p50: number, errors: number, cpuUs: number, requests: number, mirrored: Mirrored }
const PERCENT = 10

function rules (mirror: boolean): RuleSetInput {
  return {
    version: 1,
    user: { header: 'x-user-id' },
    services: {
      orders: { stable: 'v1', candidates: ['v2'], ...(mirror ? { mirror: { lane: 'v2', percent: PERCENT } } : {}) },
      upstream: { stable: 'v1' }
    },
    rules: [],
    default: 'v1'
  }
}

async function edge (variant: Variant, nacosAddr: string): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { fastifyFlowTagService } = await import('../src/fastify.ts')
  const { createShadowComparer } = await import('../../shadow/src/index.ts')
  const { runWithFlow } = await import('@flowtag/context')
  const hop = variant.startsWith('hop')
  const kind = variant.slice(variant.indexOf('-') + 1)
  let comparer: ReturnType<typeof createShadowComparer> | undefined
  const app = Fastify({ logger: false })
  await app.register(fastifyFlowTagService, {
    service: 'orders',
    version: 'v1',
    mode: 'edge',
    nacos: { serverAddr: nacosAddr },
    rules: rules(kind === 'mirror'),
    registration: false,
    metrics: false,
    outbound: { stableLane: 'v1' },
    shadow: { comparer: ({ meter }) => (comparer = createShadowComparer({ meter })) }
  })
  const path = hop ? '/hop' : '/'
  if (hop) {
    app.get(path, async () => {
      const res = await app.flowtag.fetch('http://upstream/')
      return { order: 1, at: Date.now(), upstream: await res.text() }
    })
  } else {
    app.get(path, async () => ({ order: 1, at: Date.now() }))
  }
  // copy: the same calls as the mirror's, after the answer, as ordinary lane calls (answers read):
  // the same share of GETs to lane v2, and for those, one to lane v1 as the comparer's secondaries
  // go (each of the first 20, then 5%)
  const copies = { sent: 0, secondaries: 0, failed: 0 }
  if (kind === 'copy') {
    const lanes = { v1: { tag: 'v1', baggage: {} }, v2: { tag: 'v2', baggage: {} } }
    const dispatcher = app.flowtag.dispatcher
    const call = (lane: 'v1' | 'v2', url: string, headers: Record<string, string | string[]>) => {
      copies.sent++
      runWithFlow(lanes[lane], () => dispatcher.request({ origin: 'http://orders', path: url, method: 'GET', headers }))
        .then(async (res) => { await res.body.arrayBuffer() }, () => { copies.failed++ })
    }
    app.addHook('onResponse', (request, _reply, done) => {
      if (request.method === 'GET' && request.url === path && Math.random() * 100 < PERCENT) {
        const headers: Record<string, string | string[]> = {}
        for (const k in request.headers) if (k !== 'host' && k !== 'connection') headers[k] = request.headers[k]!
        call('v2', request.url, headers)
        if (copies.secondaries < 20 || Math.random() < 0.05) {
          copies.secondaries++
          call('v1', request.url, headers)
        }
      }
      done()
    })
  }
  app.get('/__cpu', async () => process.cpuUsage())
  app.get('/__mirrored', async () => {
    const s = app.flowtag.mirror.stats
    const routes = comparer?.report({ top: 100 }).routes ?? []
    const sum = (k: 'compared' | 'diverged' | 'learning' | 'secondaries') => routes.reduce((n, r) => n + r[k], 0)
    return kind === 'copy'
      ? { sent: copies.sent, dropped: 0, timeout: 0, failed: copies.failed, fallback: 0, compared: 0, secondaries: copies.secondaries, diverged: 0, learning: 0 }
      : { sent: s.sent, dropped: s.dropped, timeout: s.timeout, failed: s.failed, fallback: s.fallback, compared: s.compared, secondaries: sum('secondaries'), diverged: sum('diverged'), learning: sum('learning') }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.flowtag.discovery.instances('orders') // warm the caches before measuring
  if (hop) await app.flowtag.discovery.instances('upstream')
  const address = app.server.address()
  process.stdout.write(`LISTENING ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

/**
 * Plain Node servers (their work is not measured), one per answer: `upstream` answers "ok";
 * `orders` answers as the edge does (`/hop` with the upstream's answer in it), with its own `at`.
 */
function plain (kinds: string[]): void {
  let n = 0
  for (const kind of kinds) {
    const srv = createServer((req, res) => {
      res.setHeader('content-type', 'application/json; charset=utf-8')
      if (kind === 'upstream') res.end('"ok"')
      else res.end(JSON.stringify(req.url === '/hop' ? { order: 1, at: Date.now(), upstream: '"ok"' } : { order: 1, at: Date.now() }))
    })
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address()
      process.stdout.write(`PORT ${kind} ${typeof a === 'object' && a !== null ? a.port : 0}\n`)
      if (++n === kinds.length) process.stdout.write('LISTENING\n')
    })
  }
  process.on('SIGTERM', () => { process.exit(0) })
}

function percentile (xs: Float64Array, q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = xs.slice().sort()
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!
}

/** Closed loop at saturation: autocannon; its per-response times (ms, fractional) give the percentiles. */
interface Run { rps: number, total: number, errors: number, p50: number, p99: number }

async function saturate (url: string, connections: number, seconds: number): Promise<Run> {
  type Result = { requests: { average: number, total: number }, errors: number, non2xx: number }
  type Tracker = { on (e: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void }
  const name = 'autocannon'
  const { default: autocannon } = await import(name) as { default: (opts: object, cb: (err: Error | null, r: Result) => void) => Tracker }
  let n = 0
  const lat: number[] = []
  const res = await new Promise<Result>((resolve, reject) => {
    const tracker = autocannon({
      url,
      connections,
      duration: seconds,
      requests: [{ setupRequest: (req: { headers?: Record<string, string> }) => { req.headers = { ...req.headers, 'x-user-id': `user-${n++ % 10000}` }; return req } }]
    }, (err, r) => err === null ? resolve(r) : reject(err))
    tracker.on('response', (_c, status, _b, ms) => { if (status < 300) lat.push(ms) })
  })
  const xs = Float64Array.from(lat)
  return { rps: res.requests.average, total: res.requests.total, errors: res.errors + res.non2xx, p50: percentile(xs, 0.5), p99: percentile(xs, 0.99) }
}

/**
 * Open loop at a fixed rate: requests started on schedule (every 1/rate s, a 1 ms timer sends
 * those due) whatever the answers, over a pool of `connections`; latency from the request's start
 * to its answer's end.
 */
async function fixedRate (url: string, rate: number, seconds: number, connections: number): Promise<Run> {
  const { Pool } = await import('undici')
  const u = new URL(url)
  const pool = new Pool(u.origin, { connections, pipelining: 1 })
  const total = Math.round(rate * seconds)
  const lat = new Float64Array(total)
  let sent = 0
  let done = 0
  let ok = 0
  let errors = 0
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    const finish = () => { if (++done === total) resolve() }
    const tick = () => {
      const now = performance.now()
      while (sent < total && t0 + sent * 1000 / rate <= now) {
        const i = sent++
        const start = performance.now()
        pool.request({ path: u.pathname, method: 'GET', headers: { 'x-user-id': `user-${i % 10000}` } }).then(async (res) => {
          await res.body.dump()
          if (res.statusCode >= 300) errors++
          else lat[ok++] = performance.now() - start
        }, () => { errors++ }).finally(finish)
      }
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })
  const elapsed = (performance.now() - t0) / 1000
  await pool.close()
  const xs = lat.subarray(0, ok)
  return { rps: total / elapsed, total, errors, p50: percentile(xs, 0.5), p99: percentile(xs, 0.99) }
}

async function load (ports: Record<Variant, string>, variants: Variant[], rounds: number, seconds: number, connections: number, rateShare: number): Promise<void> {
  const url = (v: Variant) => `http://127.0.0.1:${ports[v]}${v.startsWith('hop') ? '/hop' : '/'}`
  const base = (v: Variant) => `http://127.0.0.1:${ports[v]}/`
  // warm-up, and past the comparer's learning (20 secondaries per route): 2 s each
  for (const v of variants) process.stdout.write(`WARM ${v} ${(await saturate(url(v), connections, 2)).total}\n`)
  const cpu = async (v: Variant) => { const u = await (await fetch(`${base(v)}__cpu`)).json() as { user: number, system: number }; return u.user + u.system }
  const mirrored = async (v: Variant) => await (await fetch(`${base(v)}__mirrored`)).json() as Mirrored
  const saturatedRps = new Map<Variant, number[]>()
  const measure = async (phase: Phase, r: number, v: Variant, run: () => Promise<Run>) => {
    const m0 = await mirrored(v)
    const before = await cpu(v)
    const res = await run()
    const cpuUs = (await cpu(v) - before) / Math.max(1, res.total)
    // copies still in flight finish within a few ms; let them land before reading the counts
    await new Promise((resolve) => setTimeout(resolve, 300))
    const m1 = await mirrored(v)
    const delta = Object.fromEntries(Object.keys(m1).map((k) => [k, m1[k as keyof Mirrored] - m0[k as keyof Mirrored]])) as unknown as Mirrored
    const m: Measurement = { round: r, phase, variant: v, rps: res.rps, p99: res.p99, p50: res.p50, errors: res.errors, cpuUs, requests: res.total, mirrored: delta }
    process.stdout.write(JSON.stringify(m) + '\n')
    return m
  }
  // given rates (`--rates edge=250,hop=50`): the fixed rate only, at those
  const given = Object.fromEntries((process.env.MIRROR_BENCH_RATES ?? '').split(',').filter((x) => x.includes('=')).map((x) => x.split('=')).map(([k, n]) => [k, Number(n)]))
  for (let r = 0; r < rounds && Object.keys(given).length === 0; r++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length]!
      const m = await measure('saturated', r, v, () => saturate(url(v), connections, seconds))
      saturatedRps.set(v, [...(saturatedRps.get(v) ?? []), m.rps])
    }
  }
  const rates: Record<string, number> = {}
  for (const v of variants) {
    const plainTwin = v.replace(/-(copy|mirror)$/, '-plain') as Variant
    rates[v] = given[v.slice(0, v.indexOf('-'))] ?? Math.round(rateShare * median(saturatedRps.get(plainTwin) ?? []))
  }
  process.stdout.write(`RATES ${JSON.stringify(rates)}\n`)
  // the fixed rate: a path's three edges at once, each at the same rate, so that what the shared
  // machine does to one (another job's burst, a descheduled core) it does to the others in the
  // same window; the paths one after the other, their order rotated each round
  const paths = [...new Set(variants.map((v) => v.slice(0, v.indexOf('-'))))]
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < paths.length; i++) {
      const path = paths[(i + r) % paths.length]!
      // one generator process per edge, started and ready before the clock starts
      const trio = variants.filter((v) => v.startsWith(`${path}-`))
      const gens = trio.map((v) => child(['fixed', url(v), String(rates[v]), String(seconds), String(connections)]))
      await Promise.all(gens.map((g) => firstLine(g, 'READY')))
      await Promise.all(trio.map((v, k) => measure('fixed', r, v, async () => {
        const g = gens[k]!
        const result = firstLine(g, 'RESULT ')
        g.stdin!.write('go\n')
        return JSON.parse((await result).slice(7)) as Run
      })))
      await Promise.all(gens.map(stop))
    }
  }
  process.stdout.write('DONE\n')
}

function child (args: string[], execArgv: string[] = []): ChildProcess {
  return spawn(process.execPath, [...execArgv, self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
}

/** A fixed-rate generator of its own: READY, then on a line from its parent, the run; RESULT <json>. */
async function fixedChild (url: string, rate: number, seconds: number, connections: number): Promise<void> {
  process.stdout.write('READY\n')
  await new Promise((resolve) => process.stdin.once('data', resolve))
  const res = await fixedRate(url, rate, seconds, connections)
  process.stdout.write(`RESULT ${JSON.stringify(res)}\n`)
  process.exit(0)
}

async function stop (cp: ChildProcess): Promise<void> {
  cp.kill('SIGTERM')
  await new Promise((resolve) => cp.exitCode !== null ? resolve(null) : cp.once('exit', resolve))
}

async function main (): Promise<void> {
  const logFile = process.argv.indexOf('--from-log')
  if (logFile !== -1) {
    await report(await fromLog(process.argv[logFile + 1]!))
    return
  }
  const rounds = numberArg('--rounds', 5)
  const seconds = numberArg('--seconds', 8)
  const connections = numberArg('--connections', 32)
  const rateShare = numberArg('--rate', 0.15)
  const only = process.argv.indexOf('--only')
  const variants = ALL_VARIANTS.filter((v) => only === -1 || v.startsWith(process.argv[only + 1]!))
  const profDir = process.argv.indexOf('--cpu-prof')
  const loadStart = loadAverage()
  const { startNacosDevServer } = await import('@flowtag/nacos-dev-server')
  const { NacosClient } = await import('@flowtag/nacos')
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1' })
  const nacos = new NacosClient({ serverAddr: dev.address })
  const targets = child(['plain', 'upstream', 'orders-v1', 'orders-v2'])
  const children: ChildProcess[] = [targets]
  const results: Measurement[] = []
  let rates: Record<string, number> = {}
  try {
    const portOf: Record<string, number> = {}
    targets.stdout!.on('data', (d: Buffer) => { for (const m of String(d).matchAll(/PORT (\S+) (\d+)/g)) portOf[m[1]!] = Number(m[2]) })
    await firstLine(targets, 'LISTENING')
    await nacos.naming.register('upstream', { ip: '127.0.0.1', port: portOf.upstream!, metadata: { version: 'v1' } })
    await nacos.naming.register('orders', { ip: '127.0.0.1', port: portOf['orders-v1']!, metadata: { version: 'v1' } })
    await nacos.naming.register('orders', { ip: '127.0.0.1', port: portOf['orders-v2']!, metadata: { version: 'v2' } })
    const ports: Record<string, string> = {}
    for (const v of variants) {
      const c = child(['edge', v, dev.address], profDir === -1 ? [] : ['--cpu-prof', '--cpu-prof-dir', process.argv[profDir + 1]!, '--cpu-prof-name', `${v}.cpuprofile`])
      children.push(c)
      ports[v] = (await firstLine(c, 'LISTENING ')).split(' ')[1]!
    }
    const ratesArg = process.argv.indexOf('--rates')
    if (ratesArg !== -1) process.env.MIRROR_BENCH_RATES = process.argv[ratesArg + 1]
    const gen = child(['load', JSON.stringify(ports), JSON.stringify(variants), String(rounds), String(seconds), String(connections), String(rateShare)])
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
          if (line.startsWith('WARM ')) { console.log(line); continue }
          if (line.startsWith('RATES ')) { rates = JSON.parse(line.slice(6)) as Record<string, number>; console.log(line); continue }
          if (!line.startsWith('{')) continue
          const m = JSON.parse(line) as Measurement
          results.push(m)
          console.log(`${m.phase.padEnd(9)} round ${m.round + 1} ${m.variant.padEnd(11)} ${m.rps.toFixed(0).padStart(6)} req/s  ${m.cpuUs.toFixed(1)} us cpu/req  p50 ${m.p50.toFixed(2)} p99 ${m.p99.toFixed(2)} ms  errors ${m.errors}  requests ${m.requests}  ${JSON.stringify(m.mirrored)}`)
        }
      })
      gen.once('exit', (code) => code === 0 ? resolve() : reject(new Error(`load generator exited with ${code}`)))
    })
  } finally {
    for (const c of children) await stop(c)
    await nacos.close()
    await dev.close()
  }
  await report({ results, rates, loadStart, loadEnd: loadAverage(), seconds, connections })
}

interface RunData { results: Measurement[], rates: Record<string, number>, loadStart: string, loadEnd: string, seconds: number, fixedSeconds?: number, connections: number }

/**
 * A run again from its printed lines (`--from-log <file> --rounds R --seconds S [--rate x]`), to
 * write the section without measuring again. The lines do not give each round's request count of
 * a round: it is taken as the rate × seconds at the fixed rate (what the generator sends) and as
 * req/s × seconds at saturation (autocannon's average over the round).
 */
async function fromLog (file: string): Promise<RunData> {
  const { readFile } = await import('node:fs/promises')
  const text = await readFile(file, 'utf8')
  const seconds = numberArg('--seconds', 8)
  const results: Measurement[] = []
  const rates = JSON.parse([...text.matchAll(/^RATES (.*)$/gm)].at(-1)?.[1] ?? '{}') as Record<string, number>
  for (const m of text.matchAll(/^(saturated|fixed)\s+round (\d+) (\S+)\s+(\d+) req\/s\s+([\d.]+) us cpu\/req\s+p50 ([\d.]+) p99 ([\d.]+) ms\s+errors (\d+)\s+(?:requests (\d+)\s+)?(\{.*\})$/gm)) {
    results.push({ phase: m[1] as Phase, round: Number(m[2]) - 1, variant: m[3] as Variant, rps: Number(m[4]), cpuUs: Number(m[5]), p50: Number(m[6]), p99: Number(m[7]), errors: Number(m[8]), requests: m[9] !== undefined ? Number(m[9]) : (m[1] === 'fixed' ? rates[m[3]!]! : Number(m[4])) * seconds, mirrored: JSON.parse(m[10]!) as Mirrored })
  }
  const load = /load average (.+?) at start, (.+?) at the end/.exec(text)
  return { results, rates, loadStart: load?.[1] ?? '?', loadEnd: load?.[2] ?? '?', seconds, fixedSeconds: numberArg('--fixed-seconds', seconds), connections: numberArg('--connections', 32) }
}

async function report (run: RunData): Promise<void> {
  const { results, rates, loadStart, loadEnd, connections } = run
  const roundsOf = (phase: Phase) => new Set(results.filter((m) => m.phase === phase).map((m) => m.round)).size
  const phaseText = () => [
    roundsOf('saturated') > 0 ? `${roundsOf('saturated')} rounds of ${run.seconds} s per edge at saturation` : '',
    roundsOf('fixed') > 0 ? `${roundsOf('fixed')} rounds of ${run.fixedSeconds ?? run.seconds} s per path at the fixed rate` : ''
  ].filter((x) => x !== '').join(', ')
  // the fixed rates, and what share they are of the plain edges' saturated throughput measured
  const rateText = () => (['edge', 'hop'] as const).filter((p) => rates[`${p}-plain`] !== undefined).map((p) => {
    const sat = median(results.filter((m) => m.phase === 'saturated' && m.variant === `${p}-plain`).map((m) => m.rps))
    return `${rates[`${p}-plain`]} req/s (${p === 'edge' ? 'alone' : 'hop'}${Number.isNaN(sat) ? '' : `, ${(rates[`${p}-plain`]! / sat * 100).toFixed(0)}% of its plain edge's median saturated ${sat.toFixed(0)} req/s`})`
  }).join(' and ')
  const of = (phase: Phase, v: Variant) => results.filter((m) => m.phase === phase && m.variant === v).sort((a, b) => a.round - b.round)
  const f = (x: number, d = 2) => x.toFixed(d)
  const rows = (path: 'edge' | 'hop', what: string, phase: Phase) => {
    const p = of(phase, `${path}-plain`)
    const c = of(phase, `${path}-copy`)
    const m = of(phase, `${path}-mirror`)
    if (p.length === 0) return undefined
    const per = (fn: (i: number) => number) => p.map((_x, i) => fn(i))
    const rawCpu = per((i) => m[i]!.cpuUs / p[i]!.cpuUs)
    const copyCpu = per((i) => c[i]!.cpuUs / p[i]!.cpuUs)
    // the goal's figure: the mirror's CPU without the mirrored call's own work (copy − plain)
    const goalCpu = per((i) => 1 + (m[i]!.cpuUs - c[i]!.cpuUs) / p[i]!.cpuUs)
    const p99m = per((i) => m[i]!.p99 / p[i]!.p99)
    const p99c = per((i) => c[i]!.p99 / p[i]!.p99)
    const p99mc = per((i) => m[i]!.p99 / c[i]!.p99)
    const sum = (xs: Measurement[], k: keyof Mirrored) => xs.reduce((s, x) => s + x.mirrored[k], 0)
    const primaries = (xs: Measurement[]) => xs.reduce((s, x) => s + x.requests, 0)
    const share = (xs: Measurement[]) => sum(xs, 'sent') / Math.max(1, primaries(xs))
    const med = (xs: Measurement[], k: 'cpuUs' | 'rps' | 'p99' | 'p50') => median(xs.map((x) => x[k]))
    // µs of edge CPU per mirrored request: the added CPU over the share of primaries copied
    const copies = (sum(m, 'sent') - sum(m, 'secondaries')) / Math.max(1, primaries(m))
    const copyCopies = (sum(c, 'sent') - sum(c, 'secondaries')) / Math.max(1, primaries(c))
    // one call's own work: copy − plain over the calls (copies and secondaries) per primary
    const perCopyCall = (med(c, 'cpuUs') - med(p, 'cpuUs')) / Math.max(1e-9, share(c))
    const perCopyMachinery = (med(m, 'cpuUs') - med(c, 'cpuUs')) / Math.max(1e-9, copies)
    // the goal's figure with the secondaries' calls counted as the mirror's own cost, not as calls
    const withSecondaries = median(goalCpu) + sum(m, 'secondaries') / Math.max(1, primaries(m)) * perCopyCall / med(p, 'cpuUs')
    const load = phase === 'saturated' ? `saturated (${connections} connections)` : `fixed ${rates[`${path}-plain`]} req/s`
    return {
      cpuRow: `| ${what} | ${load} | ${f(med(p, 'rps'), 0)} / ${f(med(c, 'rps'), 0)} / ${f(med(m, 'rps'), 0)} | ${f(med(p, 'cpuUs'), 1)} / ${f(med(c, 'cpuUs'), 1)} / ${f(med(m, 'cpuUs'), 1)} | ` +
        `${f(median(rawCpu), 3)}x (${rawCpu.map((x) => f(x)).join(' / ')}) | ${f(median(copyCpu), 3)}x (${copyCpu.map((x) => f(x)).join(' / ')}) | ` +
        `**${f(median(goalCpu), 3)}x** (${goalCpu.map((x) => f(x)).join(' / ')}) | ${f(withSecondaries, 3)}x | ${f(perCopyCall, 0)} / ${f(perCopyMachinery, 0)} | ` +
        `${(copyCopies * 100).toFixed(1)}% + ${sum(c, 'secondaries')} to v1 / ${(copies * 100).toFixed(1)}% + ${sum(m, 'secondaries')} secondaries; ${sum(m, 'compared')} compared, ${sum(m, 'diverged')} diverged, ${sum(m, 'dropped')} dropped, ${sum(m, 'timeout') + sum(m, 'failed') + sum(c, 'failed')} failed | ${[...p, ...c, ...m].reduce((s, x) => s + x.errors, 0)} |`,
      latRow: `| ${what} | ${load} | ${p.map((x) => f(x.p99)).join(' / ')} | ${c.map((x) => f(x.p99)).join(' / ')} | ${m.map((x) => f(x.p99)).join(' / ')} | ` +
        `${f(med(p, 'p50'))} / ${f(med(c, 'p50'))} / ${f(med(m, 'p50'))} | **${f(median(p99m), 3)}x** (${p99m.map((x) => f(x)).join(' / ')}) | ${f(median(p99c), 3)}x | ${f(median(p99mc), 3)}x |`,
      goalCpu: median(goalCpu),
      rawCpu: median(rawCpu),
      p99: median(p99m),
      p99mc: median(p99mc),
      perCopyCall,
      perCopyMachinery,
      withSecondaries,
      spread: Math.max(...goalCpu) - Math.min(...goalCpu)
    }
  }
  const table = [
    rows('edge', 'edge answering by itself', 'fixed'), rows('hop', 'edge + a call to an upstream', 'fixed'),
    rows('edge', 'edge answering by itself', 'saturated'), rows('hop', 'edge + a call to an upstream', 'saturated')
  ].filter((r) => r !== undefined)
  const [edgeFixed, hopFixed, edgeSat, hopSat] = [rows('edge', '', 'fixed'), rows('hop', '', 'fixed'), rows('edge', '', 'saturated'), rows('hop', '', 'saturated')]
  const us = (x: number | undefined) => x === undefined ? '?' : x < 0 ? 'not measurable (negative: noise)' : `~${x.toFixed(0)}`
  const verdict = (x: number | undefined) => x === undefined ? 'not run' : `${x.toFixed(3)}× (${x <= 1.05 ? 'within' : 'over'})`
  const section = [
    HEADING,
    '',
    `Run \`node packages/service/bench/mirror.ts\` (${new Date().toISOString().slice(0, 10)}, ${machine()}; load average ${loadStart} at start, ${loadEnd} at the end: the machine is shared with other engineers' jobs).`,
    `The @flowtag/service Fastify preset in edge mode (service \`orders\`, a fixed RuleSet, \`metrics: false\`), three edges per path, each its own process: **plain** (the RuleSet without a mirror), **copy** (plain, plus the mirror's calls as ordinary lane calls after the answer, through \`app.flowtag.dispatcher\`, answers read: ${PERCENT}% of the GETs to the same \`orders\` v2 instance, and for those, one to \`orders\` v1 as the comparer's secondaries go; no capture, no comparer, no shadow marker) and **mirror** (\`services.orders.mirror = { lane: 'v2', percent: ${PERCENT} }\`, default \`shadow\` caps, and @flowtag/shadow's \`createShadowComparer\` with its defaults: learned noise, a secondary copy to lane v1 for each pair until a route has 20, then for 5% of pairs). ` +
      'copy − plain is the calls\' own work (the lane dispatcher, undici, the socket write, reading the answer), which the goal leaves out; mirror − copy is the mirror machinery (capturing the answer, the shadow flow and its timeout, reading the answers into pairs, comparing). A secondary is a call too: the goal\'s column leaves its call out with the copy\'s, the next column counts it as the mirror\'s. ' +
      'Every answer carries the time in ms (`at`), so the primary and its copy differ there and each pair is compared as JSON; the comparer learns `/at` as noise. The copies\' targets (`orders` v2 and v1, and the upstream) are plain Node servers in one other process; their work is not counted, but they run on the same 2 cores. ' +
      `Two loads, autocannon / the generator in their own process: saturation (autocannon, ${connections} connections, closed loop, one edge after the other, order rotated each round) and a fixed rate (open-loop generators, one process per edge, starting requests on schedule over ${connections} connections, at ${rateText()}, the three edges of a path loaded at once, each at that rate, so that the shared machine's bursts fall on all three in the same window; the paths in turn). ` +
      `After a 2 s warm-up per edge (past the comparer's learning), ${phaseText()}. CPU per primary request is the edge process's CPU (user + system) over the round divided by the primary requests; each figure is divided by the plain edge's of the same round and the median of those ratios is the result. p50/p99 are of the primary requests, from each response's own time (fractional ms).`,
    '',
    '| path | load | req/s plain / copy / mirror (medians) | edge CPU µs per primary request plain / copy / mirror (medians) | mirror / plain, all counted (median; per round) | copy / plain (median; per round) | **the goal: mirror without the calls\' own work**, 1 + (mirror − copy) / plain (median; per round) | the same, the secondaries\' calls counted as the mirror\'s | µs of edge CPU: one call / the machinery per copy | calls (share of primaries) copy / mirror; mirror outcomes | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...table.map((r) => r.cpuRow),
    '',
    '| path | load | primary p99 ms per round, plain | copy | mirror | p50 ms plain / copy / mirror (medians) | **p99 mirror / plain** (median; per round) | p99 copy / plain | p99 mirror / copy |',
    '|---|---|---|---|---|---|---|---|---|',
    ...table.map((r) => r.latRow),
    '',
    `Reading: against the target of issue 24 (≤ 1.05× on both). CPU per primary request without the calls' own work (copies and secondaries): ${verdict(edgeFixed?.goalCpu)} on the edge answering by itself and ${verdict(hopFixed?.goalCpu)} on the edge calling an upstream at the fixed rate; ${verdict(edgeSat?.goalCpu)} and ${verdict(hopSat?.goalCpu)} at saturation. ` +
      `With the secondaries' calls counted as the mirror's: ${verdict(edgeFixed?.withSecondaries)} / ${verdict(hopFixed?.withSecondaries)} at the fixed rate. ` +
      `All counted (the copy's call included, which the goal excludes): ${verdict(edgeFixed?.rawCpu)} / ${verdict(hopFixed?.rawCpu)} at the fixed rate. ` +
      `The primary's p99 at the fixed rate: ${verdict(edgeFixed?.p99)} (alone) and ${verdict(hopFixed?.p99)} (hop); at saturation ${verdict(edgeSat?.p99)} and ${verdict(hopSat?.p99)}. ` +
      `**The goal (CPU without the calls' work and p99, both ≤ 1.05× at the fixed rate, on both paths) is ${[edgeFixed, hopFixed].every((r) => r !== undefined && r.goalCpu <= 1.05 && r.p99 <= 1.05) ? 'met by these medians' : 'not shown by this run'}.** ` +
      (Math.max(...table.map((r) => r.spread)) > 0.1
        ? `The per-round ratios spread widely (the goal's CPU figure over ${table.map((r) => r.spread.toFixed(2)).join(', ')} in the rows above, in order): a difference of a few percent is within this machine's noise, and only the medians are figures. `
        : `The per-round goal ratios stay within ${Math.max(...table.map((r) => r.spread)).toFixed(2)} of each other. `) +
      `Per copy (the added CPU over the share of primaries copied, medians, so as noisy as they are): a call's own work is ${us(edgeFixed?.perCopyCall)} µs (alone) / ${us(hopFixed?.perCopyCall)} µs (hop) of edge CPU at the fixed rate, the mirror machinery ${us(edgeFixed?.perCopyMachinery)} µs / ${us(hopFixed?.perCopyMachinery)} µs per copy, beside a primary request of ${edgeFixed === undefined ? '?' : median(of('fixed', 'edge-plain').map((x) => x.cpuUs)).toFixed(0)} µs / ${hopFixed === undefined ? '?' : median(of('fixed', 'hop-plain').map((x) => x.cpuUs)).toFixed(0)} µs. ` +
      `At ${PERCENT}%, ≤ 1.05× on CPU needs the machinery per copy to be at most half a primary request's CPU (${PERCENT / 100} × machinery ≤ 0.05 × primary). ` +
      'The p99 at saturation is the cost of any added CPU as queueing (the edge at full CPU, the copies\' targets and the load generator on the same 2 cores), an upper bound; the fixed rate is the latency a primary sees at a normal load, the figure for the goal. p99 mirror / copy separates the machinery from the call\'s own work there too. ' +
      'Where the machinery goes (`--cpu-prof` of the edges; on this machine the samples are wall time, so a process preempted in a syscall inflates that syscall: shares, not costs): per copy, the comparer (two JSON parses and the walk, the largest JS piece), the copy\'s timeout timer and undici\'s abort listener on its signal, the shadow flow (its marker, set with `Object.defineProperty`, and its marker and baggage headers), and capturing the answer (`reply.getHeaders()`, the payload\'s bytes). ' +
      'Cut in this work: the copy\'s answer read with stream listeners, not an async iterator (in the first profile it cost about as much as the comparer), a one-chunk answer not copied, no `Promise.all` for a pair without a secondary, the mirror counter\'s attributes made once; in the comparer, the primary parsed once when a secondary comes with it, field pointers built as strings as the walk goes, the content-type test not repeated. ' +
      'The secondaries were already sampled: @flowtag/shadow asks for one per pair until a route has 20, then for `learn.rate` (5%) of pairs, so once a route is learned they are ~5% of the copies (the `secondaries` counts above); the column that counts their calls as the mirror\'s shows what they add.',
    ''
  ].join('\n')
  console.log('\n' + section)
  if (process.argv.includes('--no-write')) return
  await writeSection(benchmarksFile, section, { start: HEADING })
  console.log(`written to ${benchmarksFile}`)
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'edge') await edge(rest[0] as Variant, rest[1]!)
else if (mode === 'plain') plain(rest)
else if (mode === 'fixed') await fixedChild(rest[0]!, Number(rest[1]), Number(rest[2]), Number(rest[3]))
else if (mode === 'load') await load(JSON.parse(rest[0]!), JSON.parse(rest[1]!), Number(rest[2]), Number(rest[3]), Number(rest[4]), Number(rest[5]))
else await main()
