// Gateway-hop benchmark. The upstream and each gateway form run in their own processes;
// autocannon runs in its own process(es). Two phases, one run:
//   1. interleaved: each form alone under load, in rounds whose order rotates;
//   2. paired: each form under load at the same time as the hand-written forwarder (two
//      autocannon processes), so both see the same machine; on a shared, noisy machine this
//      is the steadier comparison.
// Every figure is also taken as gateway CPU time per request served (user + system).
// `node bench/hop.ts [rounds] [seconds] [connections]`
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const rounds = Number(process.argv[2] ?? 3)
const seconds = Number(process.argv[3] ?? 5)
const connections = Number(process.argv[4] ?? 32)
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
const autocannonBin = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const modes = ['pool', 'flowtag', 'reply-from'] as const
type Mode = (typeof modes)[number]
const children: ChildProcess[] = []
const gateways = new Map<Mode, { child: ChildProcess; port: number }>()

function start(file: string, args: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [here(file), ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve({ child, port: m.port }))
    child.once('exit', (code) => reject(new Error(`${file} ${args.join(' ')} exited with ${code}`)))
  })
}

interface Load {
  rps: number
  p50: number
  p99: number
  errors: number
}

interface Result extends Load {
  /** Gateway CPU time (user + system) per request served during the run, in µs. */
  cpuPerRequest: number
}

interface Stats {
  cpuMicros: number
  served: number
}

function stats(mode: Mode): Promise<Stats> {
  const { child } = gateways.get(mode)!
  return new Promise((resolve) => {
    const onMessage = (m: { stats?: Stats }) => {
      if (m.stats === undefined) return
      child.off('message', onMessage)
      resolve(m.stats)
    }
    child.on('message', onMessage)
    child.send('stats')
  })
}

function autocannon(mode: Mode, duration: number, conns: number): Promise<Load> {
  const url = `http://127.0.0.1:${gateways.get(mode)!.port}/users/1`
  const child = spawn(process.execPath, [autocannonBin, '-j', '-c', String(conns), '-d', String(duration), url], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c))
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited with ${code}`))
      const r = JSON.parse(out)
      resolve({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx })
    })
  })
}

/** Loads the given forms at the same time; CPU per request from the gateways' own counters. */
async function measure(forms: Mode[], duration: number, conns: number): Promise<Result[]> {
  const before = await Promise.all(forms.map(stats))
  const loads = await Promise.all(forms.map((m) => autocannon(m, duration, conns)))
  const after = await Promise.all(forms.map(stats))
  return loads.map((load, i) => ({
    ...load,
    cpuPerRequest: (after[i]!.cpuMicros - before[i]!.cpuMicros) / Math.max(1, after[i]!.served - before[i]!.served)
  }))
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
const r3 = (x: number) => Number(x.toFixed(3))

try {
  const upstream = await start('upstream.ts')
  for (const m of modes) gateways.set(m, await start('gateway.ts', [m, String(upstream.port)]))
  for (const m of modes) await autocannon(m, 2, connections) // warm-up, not recorded

  // Phase 1: interleaved, one form at a time.
  const alone = new Map<Mode, Result[]>(modes.map((m) => [m, []]))
  for (let r = 0; r < rounds; r++) {
    // Rotate the order so no form always runs first or last in a round.
    for (const m of modes.map((_, i) => modes[(i + r) % modes.length]!)) {
      const [res] = await measure([m], seconds, connections)
      alone.get(m)!.push(res!)
      console.error(`alone  round ${r + 1} ${m}: ${Math.round(res!.rps)} req/s, p99 ${res!.p99} ms, ${res!.cpuPerRequest.toFixed(1)} µs CPU/req`)
    }
  }
  const base = alone.get('pool')!
  const interleaved = modes.map((m) => {
    const rs = alone.get(m)!
    return {
      mode: m,
      rpsPerRound: rs.map((x) => Math.round(x.rps)),
      meanRps: Math.round(mean(rs.map((x) => x.rps))),
      // Each round's forms ran back to back: the per-round ratio cancels part of the drift.
      medianRoundRatio: r3(median(rs.map((x, i) => x.rps / base[i]!.rps))),
      cpuMicrosPerRequest: Number(median(rs.map((x) => x.cpuPerRequest)).toFixed(1)),
      p50: mean(rs.map((x) => x.p50)),
      p99: mean(rs.map((x) => x.p99)),
      errors: rs.reduce((a, x) => a + x.errors, 0)
    }
  })

  // Phase 2: each form side by side with the hand-written forwarder, half the connections each.
  const paired = []
  for (const m of modes.filter((x) => x !== 'pool')) {
    const rps: number[] = []
    const cpu: number[] = []
    for (let r = 0; r < rounds; r++) {
      const [p, f] = await measure(['pool', m], seconds, Math.max(1, connections >> 1))
      rps.push(f!.rps / p!.rps)
      cpu.push(p!.cpuPerRequest / f!.cpuPerRequest)
      console.error(`paired round ${r + 1} ${m} vs pool: req/s ratio ${f!.rps / p!.rps}, CPU efficiency ratio ${p!.cpuPerRequest / f!.cpuPerRequest}`)
    }
    paired.push({ mode: m, rpsRatioPerRound: rps.map(r3), medianRpsRatio: r3(median(rps)), cpuEfficiencyPerRound: cpu.map(r3), medianCpuEfficiency: r3(median(cpu)) })
  }
  console.log(JSON.stringify({ rounds, seconds, connections, node: process.version, interleaved, paired }, null, 2))
} finally {
  for (const c of children) c.kill()
}
