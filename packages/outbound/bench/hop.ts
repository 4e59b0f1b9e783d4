// Gateway-hop benchmark. The upstream and each gateway form run in their own processes;
// autocannon runs in its own process(es). Two phases, one run:
//   1. interleaved: each form alone under load, in rounds whose order rotates;
//   2. paired: each form under load at the same time as the hand-written forwarder (two
//      autocannon processes), so both see the same machine; on a shared, noisy machine this
//      is the steadier comparison;
//   3. paired: each reply-from form with the FlowTagDispatcher next to stock reply-from (the
//      cost of lanes in a gateway that is proxy configuration): with undici 8 underneath, with
//      undici 7 pools (the factory option), and with undici 7's request() too (dispatcherOf()).
// Every figure is also taken as gateway CPU time per request served (user + system).
// `node bench/hop.ts [rounds] [seconds] [connections] [--write] [--modes=pool,flowtag,...]`
// --write replaces the "Gateway hop" part of BENCHMARKS.md with this run's figures.
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { loadAverage, machine, median, writeSection } from '@flowtag/test-kit/bench'

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
const rounds = Number(args[0] ?? 3)
const seconds = Number(args[1] ?? 5)
const connections = Number(args[2] ?? 32)
const write = flags.includes('--write')
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
const autocannonBin = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const allModes = ['pool', 'flowtag', 'reply-from', 'reply-from-pool', 'reply-from-pool7', 'reply-from-flowtag', 'reply-from-flowtag-u7', 'reply-from-flowtag-via7', 'reply-from-flowtag-via7-pool8'] as const
/** The reply-from forms with lanes, each paired with stock reply-from in phase 3. */
const lanesForms: readonly Mode[] = ['reply-from-flowtag', 'reply-from-flowtag-u7', 'reply-from-flowtag-via7', 'reply-from-flowtag-via7-pool8']
/** The form the goal is judged on: what the README tells a gateway to write (apps/gateway). */
const goalForm: Mode = 'reply-from-flowtag'
type Mode = (typeof allModes)[number]
const only = flags.find((f) => f.startsWith('--modes='))?.slice('--modes='.length).split(',')
const modes: readonly Mode[] = only === undefined ? allModes : allModes.filter((m) => only.includes(m))
const children: ChildProcess[] = []
const gateways = new Map<Mode, { child: ChildProcess; port: number }>()

function start (file: string, args: string[] = []): Promise<{ child: ChildProcess; port: number }> {
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

function stats (mode: Mode): Promise<Stats> {
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

function autocannon (mode: Mode, duration: number, conns: number): Promise<Load> {
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
async function measure (forms: Mode[], duration: number, conns: number): Promise<Result[]> {
  const before = await Promise.all(forms.map(stats))
  const loads = await Promise.all(forms.map((m) => autocannon(m, duration, conns)))
  const after = await Promise.all(forms.map(stats))
  return loads.map((load, i) => ({
    ...load,
    cpuPerRequest: (after[i]!.cpuMicros - before[i]!.cpuMicros) / Math.max(1, after[i]!.served - before[i]!.served)
  }))
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
const r3 = (x: number) => Number(x.toFixed(3))

const pct = (x: number) => `${x.toFixed(3)}x`
const baseline: Mode = modes[0]!

/** A paired comparison: `form` and `base` loaded at the same time, half the connections each. */
async function pair (base: Mode, form: Mode) {
  const rps: number[] = []
  const cpu: number[] = []
  const baseCpu: number[] = []
  const formCpu: number[] = []
  for (let r = 0; r < rounds; r++) {
    const [b, f] = await measure([base, form], seconds, Math.max(1, connections >> 1))
    rps.push(f!.rps / b!.rps)
    cpu.push(b!.cpuPerRequest / f!.cpuPerRequest)
    baseCpu.push(b!.cpuPerRequest)
    formCpu.push(f!.cpuPerRequest)
    console.error(`paired round ${r + 1} ${form} vs ${base}: req/s ratio ${r3(f!.rps / b!.rps)}, CPU µs/req ${f!.cpuPerRequest.toFixed(1)} vs ${b!.cpuPerRequest.toFixed(1)}`)
  }
  return {
    mode: form,
    base,
    rpsRatioPerRound: rps.map(r3),
    medianRpsRatio: r3(median(rps)),
    cpuEfficiencyPerRound: cpu.map(r3),
    medianCpuEfficiency: r3(median(cpu)),
    baseCpuPerRound: baseCpu.map((x) => Number(x.toFixed(1))),
    formCpuPerRound: formCpu.map((x) => Number(x.toFixed(1)))
  }
}

/** What this run's figures cannot say by themselves; kept with the writer so --write keeps it. */
const NOTES = 'Lanes cost per request: a cached origin → service lookup, the lane\'s alias-table pick, one copy of the caller\'s headers with `x-flow-tag`/`baggage`/`Host` written in (when neither the caller nor the flow adds baggage members, the `baggage` value is cached per tag, not built per request), and a wrapping handler (retry, outlier counts, one counter add and one histogram record). Single interleaved rounds on this shared machine swing widely; read the medians and the paired phases.'

const loadAtStart = loadAverage()
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
  const base = alone.get(baseline)!
  const baseCpu = median(base.map((x) => x.cpuPerRequest))
  const interleaved = modes.map((m) => {
    const rs = alone.get(m)!
    const cpu = median(rs.map((x) => x.cpuPerRequest))
    return {
      mode: m,
      rpsPerRound: rs.map((x) => Math.round(x.rps)),
      meanRps: Math.round(mean(rs.map((x) => x.rps))),
      // Each round's forms ran back to back: the per-round ratio cancels part of the drift.
      medianRoundRatio: r3(median(rs.map((x, i) => x.rps / base[i]!.rps))),
      cpuMicrosPerRequest: Number(cpu.toFixed(1)),
      cpuRatio: r3(baseCpu / cpu),
      p50: mean(rs.map((x) => x.p50)),
      p99: Number(mean(rs.map((x) => x.p99)).toFixed(1)),
      errors: rs.reduce((a, x) => a + x.errors, 0)
    }
  })

  // Phase 2: each form side by side with the first (the hand-written forwarder by default).
  const paired = []
  for (const m of modes.filter((x) => x !== baseline)) paired.push(await pair(baseline, m))
  // Phase 3: the gateway-as-configuration forms side by side with stock reply-from.
  const proxied = []
  if (modes.includes('reply-from') && baseline !== 'reply-from') for (const m of lanesForms.filter((x) => modes.includes(x))) proxied.push(await pair('reply-from', m))

  const loadAtEnd = loadAverage()
  const result = { rounds, seconds, connections, node: process.version, loadAtStart, loadAtEnd, interleaved, paired, proxied }
  console.log(JSON.stringify(result, null, 2))
  const section = markdown(result, loadAtStart, loadAtEnd)
  process.stdout.write(`\n${section}`)
  if (write) {
    // the part runs up to the next bold part (**Pick cost**) or section
    const file = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
    await writeSection(file, section, { start: '**Gateway hop.**', until: ['**Pick cost**'] })
    console.error(`wrote the Gateway hop part of ${file}`)
  }
} finally {
  for (const c of children) c.kill()
}

type Interleaved = { mode: Mode; rpsPerRound: number[]; medianRoundRatio: number; cpuMicrosPerRequest: number; cpuRatio: number; p99: number; errors: number }
type Paired = Awaited<ReturnType<typeof pair>>

function markdown (r: { interleaved: Interleaved[]; paired: Paired[]; proxied: Paired[] }, start: string, end: string): string {
  const date = new Date().toISOString().slice(0, 10)
  const byMode = new Map(r.interleaved.map((x) => [x.mode, x]))
  const lines = [
    `**Gateway hop.** \`node packages/outbound/bench/hop.ts ${rounds} ${seconds} ${connections} --write\` — ${date}, ${machine()}, load average ${start} at start and ${end} at the end.`,
    'A Fastify gateway forwards `GET /users/1` to one upstream `node:http` server (a 71-byte JSON body). Each gateway form, the upstream and autocannon run in their own processes. Every gateway runs its handlers inside a flow (`runWithFlow`, as behind the tagging plugin).',
    '- **pool**: the hand-written forwarder, `undici.Pool` to the fixed upstream address (the baseline).',
    '- **flowtag**: `FlowTagDispatcher`, `origin: \'http://user-service\'`. Per request it resolves the service from the StaticDiscovery cache, selects the lane (tag `v1`), picks by weight, adds `x-flow-tag`/`baggage`/`Host`, and wraps the handler for retry, outlier and metrics.',
    '- **reply-from**: stock `@fastify/reply-from` with `base` set to the upstream address. It brings its own undici 7 (an `Agent`), called through the callback API.',
    '- **reply-from-pool**: the same `@fastify/reply-from` with `undici: new Pool(upstream)` of undici 8: no lanes, but undici 8 underneath, to tell the cost of lanes from the cost of the undici major.',
    '- **reply-from-pool7**: the same with `undici: new Pool7(upstream)` of undici 7: no lanes, reply-from\'s own undici major, given as an instance (what the lanes forms are compared with, minus the lanes).',
    '- **reply-from-flowtag**: the same `@fastify/reply-from` with `base: \'http://user-service\'` and `undici: <FlowTagDispatcher>` (the gateway as proxy configuration): reply-from\'s request handling, our dispatcher and undici 8 underneath (its `request()` and its Pools). This is what the README tells a gateway to write.',
    '- **reply-from-flowtag-u7**: as reply-from-flowtag, with undici 7 Pools under the dispatcher (`factory: (origin, opts) => new Pool7(origin, opts)`); reply-from still calls the dispatcher\'s own `request()`, undici 8\'s.',
    '- **reply-from-flowtag-via7**: as reply-from-flowtag-u7, and `undici: dispatcherOf(Dispatcher7, dispatcher)`: reply-from calls undici 7\'s `request()`, which dispatches through our dispatcher to undici 7 Pools. Lanes and two handler-API conversions differ from stock reply-from (the form the README recommended before the fix below).',
    '- **reply-from-flowtag-via7-pool8**: as reply-from-flowtag-via7, with the default undici 8 Pools under the dispatcher (one handler-API conversion).',
    '',
    `Phase 1 (interleaved): each form loaded alone, ${connections} connections, ${rounds} rounds × ${seconds} s, order rotated each round, after a 2 s warm-up each. CPU is the gateway's user+system time per request served during the round (median).`,
    '',
    `| form | req/s per round | median round ratio vs ${baseline} | gateway CPU µs/req | CPU ratio vs ${baseline} (${baseline} µs ÷ form µs) | mean p99 ms | errors |`,
    '|---|---|---|---|---|---|---|',
    ...r.interleaved.map((x) => `| ${x.mode} | ${x.rpsPerRound.join(' / ')} | ${pct(x.medianRoundRatio)} | ${x.cpuMicrosPerRequest} | ${pct(x.cpuRatio)} | ${x.p99} | ${x.errors} |`),
    '',
    `Phase 2 (paired): each form loaded *at the same time* as ${baseline}, two autocannon processes of ${Math.max(1, connections >> 1)} connections each, ${rounds} rounds × ${seconds} s. Both see the same machine at the same moment: the steadier comparison on a shared machine.`,
    '',
    `| form vs ${baseline} | req/s ratio per round | median | CPU efficiency per round (${baseline} µs/req ÷ form µs/req) | median |`,
    '|---|---|---|---|---|',
    ...r.paired.map((p) => `| ${p.mode} | ${p.rpsRatioPerRound.join(' / ')} | ${pct(p.medianRpsRatio)} | ${p.cpuEfficiencyPerRound.join(' / ')} | ${pct(p.medianCpuEfficiency)} |`)
  ]
  if (r.proxied.length > 0) {
    const costsOf = (p: Paired) => p.formCpuPerRound.map((f, i) => f / p.baseCpuPerRound[i]!)
    lines.push(
      '',
      `Phase 3 (paired): each reply-from form with lanes loaded at the same time as stock reply-from, ${rounds} rounds × ${seconds} s, ${Math.max(1, connections >> 1)} connections each. CPU cost ratio = form µs/req ÷ stock reply-from µs/req in the same round.`,
      '',
      '| form | stock reply-from CPU µs/req per round | form CPU µs/req per round | CPU cost ratio per round | **median cost ratio** | median req/s ratio |',
      '|---|---|---|---|---|---|',
      ...r.proxied.map((p) => `| ${p.mode} | ${p.baseCpuPerRound.join(' / ')} | ${p.formCpuPerRound.join(' / ')} | ${costsOf(p).map((c) => c.toFixed(3)).join(' / ')} | **${pct(median(costsOf(p)))}** | ${pct(p.medianRpsRatio)} |`)
    )
    const goal = r.proxied.find((p) => p.mode === goalForm) ?? r.proxied[r.proxied.length - 1]!
    const paired = median(costsOf(goal))
    const alone = (byMode.get(goal.mode)?.cpuMicrosPerRequest ?? NaN) / (byMode.get('reply-from')?.cpuMicrosPerRequest ?? NaN)
    const verdict = paired <= 1.05 ? 'met' : 'missed'
    lines.push(
      '',
      `Goal: reply-from with the FlowTagDispatcher ≤ 1.05x stock reply-from's gateway CPU per request, judged on ${goal.mode}. **${verdict}** in this run: ${pct(paired)} paired (median of the rounds), ${pct(alone)} interleaved (phase 1 medians).`
    )
    const plain = byMode.get('reply-from-pool')?.cpuMicrosPerRequest
    if (plain !== undefined) {
      lines.push(
        '',
        `Where the cost was: reply-from over a plain undici 8 Pool (no lanes) costs ${pct(plain / (byMode.get('reply-from')?.cpuMicrosPerRequest ?? NaN))} stock reply-from's CPU per request (phase 1 medians). undici 8's \`request()\` keeps the controller of each request in a closure of its RequestHandler (\`this.abort = (reason) => controller.abort(reason)\`), and with it alive the request's whole object graph (request, handlers, body stream, headers) survives young-generation collections: about 4x the bytes copied per scavenge and a young generation grown to 64 MB (\`--trace-gc-nvp\`; the same handler without that one closure collects like undici 7's). The FlowTagDispatcher hands callers a controller of its own, which lets go of the connection's controller (and so of the request) when the request ends: what the closure keeps is then a few dozen bytes, and reply-from-flowtag, the simple form, needs no undici 7. \`dispatcherOf()\` (reply-from-flowtag-via7, -via7-pool8) still works; it is no longer needed for CPU. What the lanes layer costs on top is the distance from reply-from-pool7 (a bare undici 7 Pool given to reply-from) to the lanes forms in phase 1, and the phase 3 table.`
      )
    }
  }
  lines.push('', NOTES, '')
  return lines.join('\n')
}
