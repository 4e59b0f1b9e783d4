/**
 * Per-call cost of @flowtag/grpc against plain @grpc/grpc-js, unary calls, in one run:
 *  - baseline: a grpc-js client to a fixed address (`127.0.0.1:PORT`), no interceptor;
 *  - flowtag: the same client class on `nacos:///echo` through FlowTagGrpc (resolver, the
 *    flowtag_lanes picker, the flow interceptor writing x-flow-tag/baggage), every call inside a
 *    flow tagged `v1`.
 * The server (plain grpc-js, JSON echo) and the load generator are processes of their own; the
 * load generator runs the variants interleaved, round by round, with the same concurrency.
 * Writes its section into the root BENCHMARKS.md (unless --no-write).
 *   node bench/unary.ts [--rounds 6] [--seconds 3] [--concurrency 32] [--no-write]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { credentials, InterceptingCall, makeGenericClientConstructor, Server, ServerCredentials, type Interceptor, type ServiceDefinition } from '@grpc/grpc-js'
import { runWithFlow } from '@flowtag/context'
import { StaticDiscovery } from '@flowtag/nacos'
import { FlowTagGrpc } from '../src/index.ts'

const benchmarksFile = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
const HEADING = '## gRPC unary calls (@flowtag/grpc)'
const self = fileURLToPath(import.meta.url)

const json = { s: (v: unknown) => Buffer.from(JSON.stringify(v)), d: (b: Buffer) => JSON.parse(b.toString()) as unknown }
const Echo: ServiceDefinition = {
  echo: { path: '/bench.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: json.s, requestDeserialize: json.d, responseSerialize: json.s, responseDeserialize: json.d }
}
const EchoClient = makeGenericClientConstructor(Echo, 'Echo')
type Client = { echo(req: object, cb: (err: Error | null, res: unknown) => void): void; close(): void }

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}

async function serve (): Promise<void> {
  const server = new Server()
  server.addService(Echo, { echo: (call: { request: unknown }, cb: (e: null, r: unknown) => void) => cb(null, call.request) })
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))))
  process.stdout.write(`LISTENING ${port}\n`)
  process.stdin.resume()
  process.stdin.on('end', () => server.forceShutdown())
}

async function load (port: number, rounds: number, seconds: number, concurrency: number): Promise<void> {
  const plain = new EchoClient(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as Client
  // The cost of grpc-js's interceptor machinery alone: one interceptor that does nothing.
  const noop: Interceptor = (options, nextCall) => new InterceptingCall(nextCall(options))
  const intercepted = new EchoClient(`127.0.0.1:${port}`, credentials.createInsecure(), { interceptors: [noop] }) as unknown as Client
  const discovery = new StaticDiscovery({ echo: [{ ip: '127.0.0.1', port, metadata: { version: 'v1' } }] })
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1' })
  const flowtag = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions()) as unknown as Client
  const flow = { tag: 'v1', baggage: {} }
  const call = (c: Client) => new Promise<void>((resolve, reject) => c.echo({ id: 1, sku: 'abc' }, (err) => (err === null ? resolve() : reject(err))))
  const variants: Record<string, () => Promise<void>> = {
    baseline: () => call(plain),
    noop: () => call(intercepted),
    flowtag: () => runWithFlow(flow, () => call(flowtag))
  }
  const run = async (fn: () => Promise<void>, ms: number) => {
    let calls = 0
    let errors = 0
    const end = performance.now() + ms
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          await fn()
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
  for (const fn of Object.values(variants)) await run(fn, 1000) // warm-up: connections, JIT
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['baseline', 'noop', 'flowtag'] : ['flowtag', 'noop', 'baseline']
    for (const v of order) process.stdout.write(JSON.stringify({ round: r, variant: v, ...(await run(variants[v]!, seconds * 1000)) }) + '\n')
  }
  plain.close()
  intercepted.close()
  flowtag.close()
  lanes.close()
  process.stdout.write('DONE\n')
}

function child (args: string[]): ChildProcess {
  return spawn(process.execPath, [self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function main (): Promise<void> {
  const rounds = arg('rounds', 6)
  const seconds = arg('seconds', 3)
  const concurrency = arg('concurrency', 32)
  const loadStart = loadavg().map((x) => x.toFixed(1)).join(' / ')
  const server = child(['serve'])
  const port = await new Promise<number>((resolve) => {
    createInterface({ input: server.stdout! }).on('line', (l) => { if (l.startsWith('LISTENING ')) resolve(Number(l.slice(10))) })
  })
  const results: Array<{ round: number; variant: string; rps: number; errors: number; cpuUsPerCall: number }> = []
  const gen = child(['load', String(port), String(rounds), String(seconds), String(concurrency)])
  await new Promise<void>((resolve) => {
    createInterface({ input: gen.stdout! }).on('line', (l) => {
      if (l === 'DONE') resolve()
      else if (l.startsWith('{')) {
        const r = JSON.parse(l)
        results.push(r)
        console.log(l)
      }
    })
  })
  server.stdin!.end()
  server.kill()
  const loadEnd = loadavg().map((x) => x.toFixed(1)).join(' / ')
  const by = (v: string) => results.filter((r) => r.variant === v)
  const ratios = [...new Set(results.map((r) => r.round))].map((round) => {
    const b = results.find((r) => r.round === round && r.variant === 'baseline')!
    const f = results.find((r) => r.round === round && r.variant === 'flowtag')!
    const n = results.find((r) => r.round === round && r.variant === 'noop')!
    return { rps: f.rps / b.rps, cpu: f.cpuUsPerCall / b.cpuUsPerCall, noopRps: n.rps / b.rps, overNoop: f.rps / n.rps }
  })
  const rpsRatio = median(ratios.map((r) => r.rps))
  const cpuRatio = median(ratios.map((r) => r.cpu))
  const noopRatio = median(ratios.map((r) => r.noopRps))
  const overNoop = median(ratios.map((r) => r.overNoop))
  const spread = ratios.map((r) => r.rps.toFixed(2)).join(', ')
  const lo = Math.min(...ratios.map((r) => r.rps))
  const hi = Math.max(...ratios.map((r) => r.rps))
  // Rounds that disagree by more than 1.5× say the machine's load, not the code, set the figure.
  const noisy = hi / lo > 1.5
  const errors = results.reduce((n, r) => n + r.errors, 0)
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
  const section = [
    HEADING,
    '',
    `\`node packages/grpc/bench/unary.ts\` (${rounds} interleaved rounds of ${seconds} s, ${concurrency} calls in flight; server and load generator`,
    'each in its own process; plain grpc-js server with a JSON echo). Baseline: a @grpc/grpc-js client to the fixed address.',
    'flowtag: the same client on `nacos:///echo` through `FlowTagGrpc` (resolver from a StaticDiscovery, the `flowtag_lanes`',
    'per-call picker, the flow interceptor writing `x-flow-tag`/`baggage`), every call in a flow tagged `v1`.',
    '',
    '| | calls/s (median) | client CPU µs/call (median) |',
    '| --- | --- | --- |',
    `| plain @grpc/grpc-js, fixed address | ${fmt(median(by('baseline').map((r) => r.rps)))} | ${median(by('baseline').map((r) => r.cpuUsPerCall)).toFixed(1)} |`,
    `| plain @grpc/grpc-js + one no-op interceptor | ${fmt(median(by('noop').map((r) => r.rps)))} | ${median(by('noop').map((r) => r.cpuUsPerCall)).toFixed(1)} |`,
    `| @flowtag/grpc, \`nacos:///echo\` in a lane | ${fmt(median(by('flowtag').map((r) => r.rps)))} | ${median(by('flowtag').map((r) => r.cpuUsPerCall)).toFixed(1)} |`,
    '',
    `**Throughput ${rpsRatio.toFixed(2)}× plain grpc-js** (median of per-round ratios; goal ≥ 0.95×: ${noisy ? 'not resolvable in this run' : rpsRatio >= 0.95 ? 'met' : 'missed'}),`,
    `client CPU per call ${cpuRatio.toFixed(2)}×. Per-round throughput ratios: ${spread}. A no-op interceptor alone (grpc-js's`,
    `interceptor chain, which propagation needs) is ${noopRatio.toFixed(2)}× plain; @flowtag/grpc is ${overNoop.toFixed(2)}× the no-op-interceptor client. Errors: ${errors}.`,
    `Node ${process.version}, ${cpus().length} CPUs shared with other work; load average ${loadStart} at the start, ${loadEnd} at the end.`,
    ...(noisy
      ? ['', `The per-round ratios span ${lo.toFixed(2)}–${hi.toFixed(2)}: the machine's load, not the code, decides single rounds, so the`, 'median is not a measurement of the overhead. Re-run on a quiet machine (load average below the CPU count) before quoting it.']
      : []),
    ''
  ].join('\n')
  console.log('\n' + section)
  if (process.argv.includes('--no-write')) return
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
else if (mode === 'load') await load(Number(rest[0]), Number(rest[1]), Number(rest[2]), Number(rest[3]))
else await main()
