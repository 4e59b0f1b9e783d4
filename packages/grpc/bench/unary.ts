/**
 * Per-call cost of @flowtag/grpc against plain @grpc/grpc-js, unary calls, in one run. Every call
 * is made inside a flow tagged `v1` (`runWithFlow` per call), as a call made while handling a
 * request of a lane-aware service is, whichever client makes it:
 *  - baseline: a grpc-js client to a fixed address (`127.0.0.1:PORT`), no interceptor;
 *  - headers: the same, the caller writing `x-flow-tag` and `baggage` into each call's Metadata
 *    by hand (what carrying the lane costs on the wire, without @flowtag/grpc);
 *  - flowtag: the same client class on `nacos:///echo` through FlowTagGrpc (resolver, the
 *    flowtag_lanes picker, the flow written into x-flow-tag/baggage, retries armed);
 *  - noflow: the baseline client called outside any flow (what entering a flow per call costs:
 *    @flowtag/context's AsyncLocalStorage, paid once per request by the edge or service plugin).
 * Every variant has its own server process (plain grpc-js, JSON echo) and its own load-generator
 * process (its client, `concurrency` calls in flight, CPU time per call from process.cpuUsage()).
 * Three phases: interleaved rounds (one variant at a time, order rotating), paired rounds
 * (baseline and flowtag loaded at the same time, so both see the same machine), each figure a
 * ratio to the baseline of the same round; then sliced: one server and one load process holding
 * the baseline, headers and flowtag clients, alternating in slices of `slice` calls for `sliced`
 * seconds, CPU counted on both sides. The goal is met when both the paired median and the sliced
 * ratio reach it.
 *   node bench/unary.ts [--rounds 8] [--seconds 2] [--concurrency 32] [--sliced 60] [--slice 1600] [--write]
 * --write replaces the "gRPC unary calls" section of BENCHMARKS.md with this run's figures.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { credentials, makeGenericClientConstructor, Metadata, Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js'
import { runWithFlow } from '@flowtag/context'
import { StaticDiscovery } from '@flowtag/nacos'
import { FlowTagGrpc } from '../src/index.ts'

const benchmarksFile = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
const HEADING = '## gRPC unary calls (@flowtag/grpc)'
const self = fileURLToPath(import.meta.url)
const VARIANTS = ['baseline', 'headers', 'flowtag', 'noflow'] as const
type Variant = (typeof VARIANTS)[number]

const json = { s: (v: unknown) => Buffer.from(JSON.stringify(v)), d: (b: Buffer) => JSON.parse(b.toString()) as unknown }
const Echo: ServiceDefinition = {
  echo: { path: '/bench.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: json.s, requestDeserialize: json.d, responseSerialize: json.s, responseDeserialize: json.d }
}
const EchoClient = makeGenericClientConstructor(Echo, 'Echo')
type Client = { echo(req: object, md: Metadata, cb: (err: Error | null, res: unknown) => void): void; close(): void }

interface Run {
  rps: number
  errors: number
  cpuUsPerCall: number
}

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}

async function serve (): Promise<void> {
  const server = new Server()
  server.addService(Echo, { echo: (call: { request: unknown }, cb: (e: null, r: unknown) => void) => cb(null, call.request) })
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))))
  process.send!({ port })
  process.on('message', (m: { cpu?: boolean }) => {
    if (m.cpu === true) {
      const u = process.cpuUsage()
      process.send!({ cpu: u.user + u.system })
    }
  })
  process.on('disconnect', () => server.forceShutdown())
}

/** One call of `variant` to the echo server at `port`, made as the variant makes it. */
function caller (variant: Variant, port: number): { call: () => Promise<void>; close: () => void } {
  let client: Client
  let lanes: FlowTagGrpc | undefined
  let metadata = () => new Metadata()
  if (variant === 'flowtag') {
    const discovery = new StaticDiscovery({ echo: [{ ip: '127.0.0.1', port, metadata: { version: 'v1' } }] })
    lanes = new FlowTagGrpc({ discovery, stableLane: 'v1' })
    client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions()) as unknown as Client
  } else {
    client = new EchoClient(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as Client
    if (variant === 'headers') {
      metadata = () => {
        const md = new Metadata()
        md.set('x-flow-tag', 'v1')
        md.set('baggage', 'flowtag.lane=v1')
        return md
      }
    }
  }
  const flow = { tag: 'v1', baggage: {} }
  const wrap = variant === 'noflow' ? (fn: () => Promise<void>) => fn() : (fn: () => Promise<void>) => runWithFlow(flow, fn)
  const once = () => new Promise<void>((resolve, reject) => client.echo({ id: 1, sku: 'abc' }, metadata(), (err) => (err === null ? resolve() : reject(err))))
  return {
    call: () => wrap(once),
    close: () => {
      client.close()
      lanes?.close()
    }
  }
}

/** A load generator: one client of one variant; runs `{ run: ms }` on request, answers with a Run. */
async function load (variant: Variant, port: number, concurrency: number): Promise<void> {
  const { call, close } = caller(variant, port)
  const run = async (ms: number): Promise<Run> => {
    let calls = 0
    let errors = 0
    const end = performance.now() + ms
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          await call()
          calls++
        } catch {
          errors++
        }
      }
    }))
    const elapsed = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    return { rps: calls / elapsed, errors, cpuUsPerCall: (cpu.user + cpu.system) / Math.max(1, calls) }
  }
  await run(1500) // warm-up: connections, JIT
  process.on('message', (m: { run?: number }) => {
    if (m.run !== undefined) run(m.run).then((r) => process.send!({ result: r }), (err: unknown) => process.send!({ error: String(err) }))
  })
  process.on('disconnect', close)
  process.send!({ ready: true })
}

interface Sliced {
  calls: number
  ms: number
  clientUs: number
  serverUs: number
}

/**
 * The sliced load generator: one client per variant in this one process, all calling the same
 * server, in slices of `slice` calls that alternate variant by variant for `{ sliced: ms }`. Any
 * disturbance of the machine lasts longer than a slice (tens of ms) and so falls on every variant
 * alike; CPU is counted on both sides (the server's own process.cpuUsage(), asked over IPC).
 */
async function mixed (port: number, concurrency: number, slice: number): Promise<void> {
  const names = ['baseline', 'headers', 'flowtag'] as const
  const callers = names.map((v) => caller(v, port))
  const serverCpu = () => new Promise<number>((resolve) => {
    const on = (m: { cpu?: number }) => {
      if (m.cpu === undefined) return
      process.off('message', on)
      resolve(m.cpu)
    }
    process.on('message', on)
    process.send!({ serverCpu: true })
  })
  const one = async (i: number): Promise<Sliced> => {
    const s0 = await serverCpu()
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    const { call } = callers[i]!
    await Promise.all(Array.from({ length: concurrency }, async () => {
      for (let k = 0; k < slice / concurrency; k++) await call()
    }))
    const ms = performance.now() - t0
    const c = process.cpuUsage(c0)
    return { calls: slice, ms, clientUs: c.user + c.system, serverUs: (await serverCpu()) - s0 }
  }
  for (let i = 0; i < names.length; i++) await one(i) // warm-up
  process.on('message', (m: { sliced?: number }) => {
    if (m.sliced === undefined) return
    const until = performance.now() + m.sliced
    const totals = names.map(() => ({ calls: 0, ms: 0, clientUs: 0, serverUs: 0 }))
    void (async () => {
      for (let r = 0; performance.now() < until; r++) {
        // Alternate the order, so no variant always runs right after another.
        for (let j = 0; j < names.length; j++) {
          const i = r % 2 === 0 ? j : names.length - 1 - j
          const x = await one(i)
          const t = totals[i]!
          t.calls += x.calls
          t.ms += x.ms
          t.clientUs += x.clientUs
          t.serverUs += x.serverUs
        }
      }
      process.send!({ totals: Object.fromEntries(names.map((n, i) => [n, totals[i]])) })
    })().catch((err: unknown) => process.send!({ error: String(err) }))
  })
  process.on('disconnect', () => { for (const c of callers) c.close() })
  process.send!({ ready: true })
}

const children: ChildProcess[] = []

function child (args: string[]): ChildProcess {
  const c = spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(c)
  return c
}

function message<T> (c: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: Record<string, unknown>) => {
      if (m.error !== undefined) reject(new Error(String(m.error)))
      else if (key in m) {
        c.off('message', on)
        resolve(m[key] as T)
      }
    }
    c.on('message', on)
  })
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function main (): Promise<void> {
  const rounds = arg('rounds', 8)
  const seconds = arg('seconds', 2)
  const concurrency = arg('concurrency', 32)
  const slicedSeconds = arg('sliced', 60)
  const sliceCalls = arg('slice', 1600)
  const write = process.argv.includes('--write')
  const loads: number[] = [loadavg()[0]!]
  const loadStart = loadavg().map((x) => x.toFixed(1)).join(' / ')
  const gens = {} as Record<Variant, ChildProcess>
  for (const v of VARIANTS) {
    const server = child(['serve'])
    const port = await message<number>(server, 'port')
    gens[v] = child(['load', v, String(port), String(concurrency)])
  }
  await Promise.all(VARIANTS.map((v) => message(gens[v], 'ready')))
  const ms = seconds * 1000
  const runOf = (v: Variant) => {
    const result = message<Run>(gens[v], 'result')
    gens[v].send({ run: ms })
    return result
  }

  // Interleaved: one variant at a time, the order rotating round by round.
  const interleaved: Array<Record<Variant, Run>> = []
  for (let r = 0; r < rounds; r++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]!)
    const round = {} as Record<Variant, Run>
    for (const v of order) round[v] = await runOf(v)
    interleaved.push(round)
    loads.push(loadavg()[0]!)
    console.log(JSON.stringify({ phase: 'interleaved', round: r, ...round }))
  }
  // Paired: baseline and flowtag under load at the same time.
  const paired: Array<{ baseline: Run; flowtag: Run }> = []
  for (let r = 0; r < rounds; r++) {
    // Which of the two starts first biases a pair (up to 1.4× in an A/A check on a busy machine): alternate it.
    const [baseline, flowtag] = r % 2 === 0
      ? await Promise.all([runOf('baseline'), runOf('flowtag')])
      : await Promise.all([runOf('flowtag'), runOf('baseline')]).then(([f, b]) => [b, f] as const)
    paired.push({ baseline, flowtag })
    loads.push(loadavg()[0]!)
    console.log(JSON.stringify({ phase: 'paired', round: r, baseline, flowtag }))
  }
  // Sliced: one server, one load process with the baseline, headers and flowtag clients,
  // alternating in short slices; the load process asks the server its CPU through us.
  const slicedServer = child(['serve'])
  const slicedPort = await message<number>(slicedServer, 'port')
  const mixer = child(['mixed', String(slicedPort), String(concurrency), String(sliceCalls)])
  mixer.on('message', (m: { serverCpu?: boolean }) => {
    if (m.serverCpu !== true) return
    const answer = message<number>(slicedServer, 'cpu')
    slicedServer.send({ cpu: true })
    void answer.then((cpu) => mixer.send({ cpu }))
  })
  await message(mixer, 'ready')
  const totalsP = message<Record<'baseline' | 'headers' | 'flowtag', Sliced>>(mixer, 'totals')
  mixer.send({ sliced: slicedSeconds * 1000 })
  const sliced = await totalsP
  loads.push(loadavg()[0]!)
  console.log(JSON.stringify({ phase: 'sliced', ...sliced }))
  for (const c of children) c.disconnect()
  const loadEnd = loadavg().map((x) => x.toFixed(1)).join(' / ')

  const ratio = (rs: Array<Partial<Record<Variant, Run>>>, v: Variant, f: (r: Run) => number) => rs.map((r) => f(r[v]!) / f(r.baseline!))
  const iRps = ratio(interleaved, 'flowtag', (r) => r.rps)
  const iCpu = ratio(interleaved, 'flowtag', (r) => r.cpuUsPerCall)
  const hRps = ratio(interleaved, 'headers', (r) => r.rps)
  const hCpu = ratio(interleaved, 'headers', (r) => r.cpuUsPerCall)
  const nRps = ratio(interleaved, 'noflow', (r) => r.rps)
  const nCpu = ratio(interleaved, 'noflow', (r) => r.cpuUsPerCall)
  const pRps = ratio(paired, 'flowtag', (r) => r.rps)
  const pCpu = ratio(paired, 'flowtag', (r) => r.cpuUsPerCall)
  const spreadOf = (xs: number[]) => Math.max(...xs) / Math.min(...xs)
  const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ')
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
  const med = (rs: Array<Partial<Record<Variant, Run>>>, v: Variant, f: (r: Run) => number) => median(rs.map((r) => f(r[v]!)))
  const errors = [...interleaved, ...paired].reduce((n, r) => n + Object.values(r).reduce((m, x) => m + x.errors, 0), 0)
  const loadMax = Math.max(...loads)
  const loadMedian = median(loads)
  const ncpu = cpus().length
  // The machine, not the code, sets the figures when it is busier than its CPUs or when rounds
  // disagree by more than 1.5×.
  const quiet = loadMax < ncpu * 2 && spreadOf(pRps) <= 1.5
  const verdict = (x: number) => (!quiet ? 'not resolvable in this run' : x >= 0.95 ? 'met' : 'missed')
  const sRate = (v: keyof typeof sliced) => (sliced[v].calls / sliced[v].ms) * 1000
  const sClient = (v: keyof typeof sliced) => sliced[v].clientUs / sliced[v].calls
  const sServer = (v: keyof typeof sliced) => sliced[v].serverUs / sliced[v].calls
  const slicedRatio = sRate('flowtag') / sRate('baseline')
  const slicedRow = (label: string, v: keyof typeof sliced) =>
    `| ${label} | ${fmt(sRate(v))} | ${(sRate(v) / sRate('baseline')).toFixed(3)}× | ${sClient(v).toFixed(1)} | ${(sClient(v) / sClient('baseline')).toFixed(3)}× | ${sServer(v).toFixed(1)} | ${(sServer(v) / sServer('baseline')).toFixed(3)}× |`
  const section = [
    HEADING,
    '',
    `\`node packages/grpc/bench/unary.ts --rounds ${rounds} --seconds ${seconds} --concurrency ${concurrency} --sliced ${slicedSeconds} --slice ${sliceCalls}\` (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${ncpu} CPUs: ${cpus()[0]?.model.trim() ?? 'unknown'}).`,
    'Unary calls, a JSON echo; every variant has its own plain grpc-js server process and its own load-generator process',
    `(${concurrency} calls in flight; client CPU per call from \`process.cpuUsage()\`). Every call but noflow's is made inside a flow`,
    'tagged `v1` (`runWithFlow` per call), as a call made while a lane-aware service handles a request is, whichever client makes it.',
    'Baseline: a @grpc/grpc-js client to the fixed address. headers: the same, the caller writing `x-flow-tag` and `baggage` into',
    'each call\'s Metadata by hand. flowtag: the same client class on `nacos:///echo` through `FlowTagGrpc` (resolver from a',
    'StaticDiscovery, the `flowtag_lanes` per-call picker, the flow written into `x-flow-tag`/`baggage` by the channel of',
    '`clientOptions()`, retries armed). noflow: the baseline client outside any flow (what entering a flow costs, paid once per',
    'request by the @flowtag/context edge or service plugin, whose own benchmark counts it). Interleaved: one variant at a time,',
    `order rotating; paired: baseline and flowtag loaded at the same time, which starts first alternating. ${rounds} rounds of ${seconds} s each; every ratio is taken within a round.`,
    '',
    '| | calls/s (median, interleaved) | client CPU µs/call (median, interleaved) |',
    '| --- | --- | --- |',
    `| plain @grpc/grpc-js, fixed address (baseline) | ${fmt(med(interleaved, 'baseline', (r) => r.rps))} | ${med(interleaved, 'baseline', (r) => r.cpuUsPerCall).toFixed(1)} |`,
    `| plain, the lane headers written by hand | ${fmt(med(interleaved, 'headers', (r) => r.rps))} | ${med(interleaved, 'headers', (r) => r.cpuUsPerCall).toFixed(1)} |`,
    `| @flowtag/grpc, \`nacos:///echo\` in a lane | ${fmt(med(interleaved, 'flowtag', (r) => r.rps))} | ${med(interleaved, 'flowtag', (r) => r.cpuUsPerCall).toFixed(1)} |`,
    `| plain, outside any flow | ${fmt(med(interleaved, 'noflow', (r) => r.rps))} | ${med(interleaved, 'noflow', (r) => r.cpuUsPerCall).toFixed(1)} |`,
    '',
    '| ÷ baseline, median of per-round ratios | throughput | client CPU per call | throughput per round |',
    '| --- | --- | --- | --- |',
    `| flowtag, paired | **${median(pRps).toFixed(2)}×** | ${median(pCpu).toFixed(2)}× | ${list(pRps)} |`,
    `| flowtag, interleaved | ${median(iRps).toFixed(2)}× | ${median(iCpu).toFixed(2)}× | ${list(iRps)} |`,
    `| headers, interleaved | ${median(hRps).toFixed(2)}× | ${median(hCpu).toFixed(2)}× | ${list(hRps)} |`,
    `| noflow, interleaved | ${median(nRps).toFixed(2)}× | ${median(nCpu).toFixed(2)}× | ${list(nRps)} |`,
    '',
    'Sliced: one server process and one load process holding the baseline, headers and flowtag clients (every call in a flow),',
    `${fmt(sliceCalls)}-call slices (${concurrency} in flight, a fraction of a second each) alternating variant by variant for ${slicedSeconds} s, the`,
    'order reversed every other round, so the machine\'s slow spells fall on every variant alike over the run. CPU per call on',
    'both sides (the server reports its own `process.cpuUsage()` around each slice). Totals over the run.',
    '',
    '| sliced | calls/s | ÷ baseline | client CPU µs/call | ÷ baseline | server CPU µs/call | ÷ baseline |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    slicedRow('plain @grpc/grpc-js (baseline)', 'baseline'),
    slicedRow('plain, lane headers by hand', 'headers'),
    slicedRow('@flowtag/grpc', 'flowtag'),
    '',
    `Goal ≥ 0.95× plain throughput: paired median **${median(pRps).toFixed(2)}×**, ${verdict(median(pRps))}; sliced **${slicedRatio.toFixed(3)}×**, ${slicedRatio >= 0.95 ? 'met' : 'missed'}.`,
    `Reading (sliced): carrying the lane in the metadata, written by hand on plain grpc-js, costs ${(sRate('headers') / sRate('baseline')).toFixed(3)}× on its own (client CPU`,
    `${(sClient('headers') / sClient('baseline')).toFixed(3)}×, server CPU ${(sServer('headers') / sServer('baseline')).toFixed(3)}×: grpc-js and node:http2 copy, convert and validate every metadata entry on both sides);`,
    `@flowtag/grpc (resolver, per-call picker, propagation, retries) runs at ${(sRate('flowtag') / sRate('headers')).toFixed(3)}× of that hand-written propagation.`,
    `Errors: ${errors}. Load average ${loadStart} at the start,`,
    `${loadEnd} at the end; 1-minute load average per round: median ${loadMedian.toFixed(1)}, max ${loadMax.toFixed(1)}.`,
    ...(quiet
      ? []
      : ['', `The machine was busy (load average up to ${loadMax.toFixed(1)} on ${ncpu} CPUs; paired rounds span ${Math.min(...pRps).toFixed(2)}–${Math.max(...pRps).toFixed(2)}×):`, 'the load, not the code, decides single rounds. Re-run on a quiet machine before quoting the ratios.']),
    ''
  ].join('\n')
  console.log('\n' + section)
  if (!write) {
    console.log('(not written: pass --write to replace the section in BENCHMARKS.md)')
    return
  }
  let text = ''
  try { text = await readFile(benchmarksFile, 'utf8') } catch { text = '# Benchmarks\n\n' }
  const start = text.indexOf(HEADING)
  if (start === -1) text = text.replace(/\n*$/, '\n\n') + section
  else {
    const next = text.indexOf('\n## ', start + HEADING.length)
    text = text.slice(0, start) + section + (next === -1 ? '' : '\n' + text.slice(next + 1))
  }
  await writeFile(benchmarksFile, text)
  console.log(`written to ${benchmarksFile}`)
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'serve') await serve()
else if (mode === 'load') await load(rest[0] as Variant, Number(rest[1]), Number(rest[2]))
else if (mode === 'mixed') await mixed(Number(rest[0]), Number(rest[1]), Number(rest[2]))
else {
  try {
    await main()
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill()
  }
}
