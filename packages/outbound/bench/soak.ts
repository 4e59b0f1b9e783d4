// Soak: is memory flat over a million requests through the edge plugin and one outbound hop?
// The flowtag server (edge tagging, 20 rules, FlowTagDispatcher hop) and the bare baseline
// (Fastify + undici.Pool hop) run side by side, each in its own process, each loaded by its own
// autocannon process in chunks; after every chunk each server reports RSS and heap after a GC.
// Drift = last RSS over the RSS once warm (after the warm-up chunks), for each server.
// `node bench/soak.ts [requests=1000000] [chunk=50000] [connections=16] [--write]`
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { loadAverage, machine, median, writeSection } from '@flowtag/test-kit/bench'

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const total = Number(args[0] ?? 1_000_000)
const chunk = Number(args[1] ?? 50_000)
const connections = Number(args[2] ?? 16)
const write = process.argv.includes('--write')
const WARMUP_CHUNKS = 2
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
const autocannonBin = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const children: ChildProcess[] = []
type Mode = 'flowtag' | 'bare'
interface Mem { rss: number, heapUsed: number, served: number }

function start (file: string, argv: string[], execArgv: string[] = []): Promise<{ child: ChildProcess, port: number }> {
  const child = spawn(process.execPath, [...execArgv, here(file), ...argv], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve({ child, port: m.port }))
    child.once('exit', (code) => reject(new Error(`${file} ${argv.join(' ')} exited with ${code}`)))
  })
}

function mem (child: ChildProcess): Promise<Mem> {
  return new Promise((resolve) => {
    const on = (m: { mem?: Mem }) => {
      if (m.mem === undefined) return
      child.off('message', on)
      resolve(m.mem)
    }
    child.on('message', on)
    child.send('mem')
  })
}

/** `amount` requests from its own autocannon process; every request another user id (so splits and tags vary). */
function load (port: number, amount: number): Promise<{ rps: number, errors: number }> {
  const c = spawn(process.execPath, [here('soak.ts'), '--load', String(port), String(amount), String(connections)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  c.stdout.on('data', (d: Buffer) => (out += d))
  return new Promise((resolve, reject) => {
    c.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited with ${code}`))
      resolve(JSON.parse(out) as { rps: number, errors: number })
    })
  })
}

// The load generator's own process: autocannon's API, so each request can carry another user id.
if (process.argv[2] === '--load') {
  const [port, amount, conns] = process.argv.slice(3).map(Number)
  type Result = { requests: { average: number }, errors: number, non2xx: number }
  const { default: autocannon } = (await import(autocannonBin)) as { default: (o: object) => Promise<Result> }
  let n = 0
  const r = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: conns,
    amount,
    requests: [{ setupRequest: (req: { path?: string, headers?: Record<string, string> }) => { const id = n++ % 100_000; req.path = `/users/${id}`; req.headers = { ...req.headers, 'x-user-id': `user-${id}` }; return req } }]
  })
  process.stdout.write(JSON.stringify({ rps: r.requests.average, errors: r.errors + r.non2xx }))
  process.exit(0)
}

const mb = (b: number) => (b / 1048576).toFixed(1)
const loadStart = loadAverage()
const t0 = Date.now()
const samples = new Map<Mode, Array<Mem & { at: number }>>([['flowtag', []], ['bare', []]])
const rates = new Map<Mode, number[]>([['flowtag', []], ['bare', []]])
let errors = 0
try {
  const upstream = await start('upstream.ts', [])
  const servers = new Map<Mode, { child: ChildProcess, port: number }>()
  for (const m of ['flowtag', 'bare'] as const) servers.set(m, await start('soak-server.ts', [m, String(upstream.port)], ['--expose-gc']))
  const modes = [...servers.keys()]
  for (let sent = 0; sent < total; sent += chunk) {
    const n = Math.min(chunk, total - sent)
    // both servers loaded at the same time, so both see the same machine
    const results = await Promise.all(modes.map((m) => load(servers.get(m)!.port, n)))
    for (const [i, m] of modes.entries()) {
      errors += results[i]!.errors
      rates.get(m)!.push(results[i]!.rps)
      const s = await mem(servers.get(m)!.child)
      samples.get(m)!.push({ ...s, at: sent + n })
    }
    const f = samples.get('flowtag')!.at(-1)!
    const b = samples.get('bare')!.at(-1)!
    console.error(`${(sent + n).toLocaleString('en')} requests each: flowtag RSS ${mb(f.rss)} MiB heap ${mb(f.heapUsed)} MiB (${Math.round(results[0]!.rps)} req/s) | bare RSS ${mb(b.rss)} MiB heap ${mb(b.heapUsed)} MiB (${Math.round(results[1]!.rps)} req/s) | errors ${errors}`)
  }
} finally {
  for (const c of children) c.kill()
}

const drift = (m: Mode) => {
  const s = samples.get(m)!
  const warm = s[Math.min(WARMUP_CHUNKS, s.length) - 1]!
  const after = s.slice(WARMUP_CHUNKS)
  const last = s.at(-1)!
  const max = Math.max(...after.map((x) => x.rss), warm.rss)
  return {
    warmRss: warm.rss,
    lastRss: last.rss,
    drift: (last.rss - warm.rss) / warm.rss,
    maxDrift: (max - warm.rss) / warm.rss,
    heapDrift: (last.heapUsed - warm.heapUsed) / warm.heapUsed,
    served: last.served
  }
}
const f = drift('flowtag')
const b = drift('bare')
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`
const ok = f.drift <= 0.05
const section = [
  '## Soak: memory over a million requests (@flowtag/outbound)',
  '',
  `\`node packages/outbound/bench/soak.ts ${total} ${chunk} ${connections} --write\` — ${new Date().toISOString().slice(0, 10)}, ${machine()}, load average ${loadStart} at start and ${loadAverage()} at the end (other engineers' jobs share the machine), ${Math.round((Date.now() - t0) / 1000)} s.`,
  `Two servers side by side, each in its own process and loaded by its own autocannon process (${connections} connections, ${chunk.toLocaleString('en')} requests a chunk, every request another \`x-user-id\`): **flowtag** — Fastify + the @flowtag/context edge plugin (20 rules: 19 header matches that miss, a sticky 10 % split) + one \`FlowTagDispatcher\` hop to \`http://user-service\` (lanes v1 and v2, so both lanes' headers and picks are exercised); **bare** — Fastify + one \`undici.Pool\` hop to the same upstream (its own process). RSS and heap are read after a full GC at the end of each chunk; "warm" is after the first ${WARMUP_CHUNKS} chunks (${(WARMUP_CHUNKS * chunk).toLocaleString('en')} requests).`,
  '',
  '| server | requests served | RSS warm | RSS at the end | RSS drift after warm-up | largest RSS drift on the way | heap drift | median req/s |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  `| flowtag | ${f.served.toLocaleString('en')} | ${mb(f.warmRss)} MiB | ${mb(f.lastRss)} MiB | **${pct(f.drift)}** | ${pct(f.maxDrift)} | ${pct(f.heapDrift)} | ${Math.round(median(rates.get('flowtag')!))} |`,
  `| bare | ${b.served.toLocaleString('en')} | ${mb(b.warmRss)} MiB | ${mb(b.lastRss)} MiB | ${pct(b.drift)} | ${pct(b.maxDrift)} | ${pct(b.heapDrift)} | ${Math.round(median(rates.get('bare')!))} |`,
  '',
  `Goal: flowtag's RSS within 5 % after warm-up — ${ok ? 'met' : 'NOT met'} (${pct(f.drift)}; the bare baseline in the same run: ${pct(b.drift)}). Errors (non-2xx or socket) over both servers: ${errors}. RSS per chunk (MiB), flowtag: ${samples.get('flowtag')!.map((s) => mb(s.rss)).join(', ')}.`,
  ''
].join('\n')
process.stdout.write(`\n${section}`)
if (write) {
  const file = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
  await writeSection(file, section, { start: '## Soak: memory over a million requests' })
  console.error(`written to ${file}`)
}
if (!ok || errors > 0) process.exitCode = 1
