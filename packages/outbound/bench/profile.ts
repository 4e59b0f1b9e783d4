// Where a gateway form spends its CPU: runs one form of bench/gateway.ts, warms it up, profiles
// it (the inspector's CPU profiler, as `node --cpu-prof`, but over the load only) under
// autocannon, and prints the self time by package and the top functions. With --heap: the
// sampling heap profiler instead, bytes allocated per request by package and function; with
// --live, the bytes still reachable at the end (what survives collections), by where allocated.
// `node bench/profile.ts <mode> [seconds] [connections] [--out=dir] [--heap]` (modes: see gateway.ts).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const mode = args[0] ?? 'reply-from-flowtag'
const seconds = Number(args[1] ?? 10)
const connections = Number(args[2] ?? 16)
const out = process.argv.find((a) => a.startsWith('--out='))?.slice('--out='.length) ?? mkdtempSync(join(tmpdir(), 'flowtag-prof-'))
const live = process.argv.includes('--live')
const heap = live || process.argv.includes('--heap')
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
const autocannonBin = createRequire(import.meta.url).resolve('autocannon/autocannon.js')

// --node=<flag>: a Node/V8 flag for the gateway process (e.g. --node=--trace-gc-nvp).
const nodeFlags = process.argv.filter((a) => a.startsWith('--node=')).map((a) => a.slice('--node='.length))

function start (file: string, args: string[], execArgv: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...execArgv, here(file), ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve({ child, port: m.port }))
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)))
  })
}

function load (port: number, duration = seconds): Promise<number> {
  const child = spawn(process.execPath, [autocannonBin, '-j', '-c', String(connections), '-d', String(duration), `http://127.0.0.1:${port}/users/1`], { stdio: ['ignore', 'pipe', 'inherit'] })
  let text = ''
  child.stdout.on('data', (c: Buffer) => (text += c))
  return new Promise((resolve) => child.once('exit', () => resolve((JSON.parse(text) as { requests: { total: number } }).requests.total)))
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }

/** Which package a frame's script belongs to, e.g. `undici@8.13.1`, `fastify`, `@flowtag/outbound`, `node:internal`. */
function owner (url: string): string {
  if (url === '') return '(native / VM)'
  if (url.startsWith('node:')) return 'node internals'
  const pnpm = /\.pnpm\/([^/]+)\/node_modules\//.exec(url)
  if (pnpm !== null) return pnpm[1]!.replace(/^@([^+]+)\+/, '@$1/').replace(/@([0-9][^_]*).*$/, '@$1')
  if (url.includes('/packages/')) return `@flowtag/${/\/packages\/([^/]+)\//.exec(url)?.[1] ?? '?'}`
  return url
}

const la = loadavg()
const upstream = await start('upstream.ts', [])
const gateway = await start('gateway.ts', [mode, String(upstream.port)], nodeFlags)
const ask = (m: object, answer: string) => new Promise<Record<string, unknown>>((resolve) => {
  const on = (r: Record<string, unknown>) => {
    if (!(answer in r)) return
    gateway.child.off('message', on)
    resolve(r)
  }
  gateway.child.on('message', on)
  gateway.child.send(m)
})
const file = join(out, `${mode}.${heap ? 'heapprofile' : 'cpuprofile'}`)
await load(gateway.port, 3) // warm-up: JIT, connections; not profiled
await ask({ profile: 'start', heap, live }, 'profiling')
const requests = await load(gateway.port)
const { gc } = await ask({ profile: 'stop', file }, 'profiled')
gateway.child.disconnect()
upstream.child.kill()

console.log(`${mode}: GC pauses while profiled (count, ms): ${JSON.stringify(gc)}`)
if (heap) {
  reportHeap(JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }, requests)
  process.exit(0)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const total = [...self.values()].reduce((a, b) => a + b, 0)
const idle = [...self].filter(([id]) => ['(idle)', '(program)', '(garbage collector)'].includes(byId.get(id)!.callFrame.functionName))
const byOwner = new Map<string, number>()
const byFunction = new Map<string, number>()
for (const [id, us] of self) {
  const f = byId.get(id)!.callFrame
  const o = ['(idle)', '(program)', '(garbage collector)'].includes(f.functionName) ? f.functionName : owner(f.url)
  byOwner.set(o, (byOwner.get(o) ?? 0) + us)
  const key = `${f.functionName || '(anonymous)'} ${owner(f.url)} ${f.url.split('/').at(-1) ?? ''}:${f.lineNumber + 1}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + us)
}
const busy = total - idle.filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0)
const pct = (us: number) => `${((100 * us) / busy).toFixed(1)}%`
console.log(`${mode}: ${requests} requests in ${seconds} s profile ${file}, load average ${la.map((x) => x.toFixed(1)).join(' / ')}`)
console.log(`busy (not idle) CPU ${(busy / 1000).toFixed(0)} ms, ${(busy / requests).toFixed(1)} µs per request`)
console.log('\nself time by package (share of busy):')
for (const [o, us] of [...byOwner].sort((a, b) => b[1] - a[1]).filter(([o]) => o !== '(idle)').slice(0, 15)) console.log(`  ${pct(us).padStart(6)}  ${(us / requests).toFixed(2).padStart(6)} µs/req  ${o}`)
console.log('\ntop functions by self time:')
for (const [k, us] of [...byFunction].sort((a, b) => b[1] - a[1]).filter(([k]) => !k.startsWith('(idle)')).slice(0, 30)) console.log(`  ${pct(us).padStart(6)}  ${(us / requests).toFixed(2).padStart(6)} µs/req  ${k}`)

interface HeapNode { callFrame: ProfileNode['callFrame']; selfSize: number; children: HeapNode[] }

/** Sampled bytes allocated per request, by package and by allocating function. */
function reportHeap (profile: { head: HeapNode }, requests: number): void {
  const byOwner = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let total = 0
  const walk = (n: HeapNode) => {
    const f = n.callFrame
    total += n.selfSize
    const o = owner(f.url)
    byOwner.set(o, (byOwner.get(o) ?? 0) + n.selfSize)
    const key = `${f.functionName || '(anonymous)'} ${o} ${f.url.split('/').at(-1) ?? ''}:${f.lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + n.selfSize)
    for (const c of n.children) walk(c)
  }
  walk(profile.head)
  console.log(`${mode}: ${requests} requests in ${seconds} s, ${(total / requests).toFixed(0)} bytes allocated per request (sampled), profile ${file}`)
  console.log('\nallocated by package:')
  for (const [o, b] of [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${(b / requests).toFixed(0).padStart(7)} B/req  ${o}`)
  console.log('\ntop allocating functions:')
  for (const [k, b] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${(b / requests).toFixed(0).padStart(7)} B/req  ${k}`)
}
