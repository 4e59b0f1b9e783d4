// Dev-server benchmark: 1,000 instances beating and 100 long-poll listeners on loopback, against
// the dev server and, for the ratio, a bare node:http server in the same run. Server and load
// generator run in separate processes; the server's CPU time is read from /proc.
// Usage: node bench/run.ts [seconds=20]  — writes its section of BENCHMARKS.md.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { cpus } from 'node:os'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const seconds = Number(process.argv[2] ?? 20)
const INSTANCES = 1000
const LISTENERS = 100

function startServer (script: string, args: string[]): Promise<{ child: ChildProcess; addr: string }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = /NACOS_SERVER_ADDR=([\d.]+:\d+)/.exec(out)
      if (m) resolve({ child, addr: m[1]! })
    })
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)))
  })
}

const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100 // utime + stime, in clock ticks of 1/100 s
}

interface LoadResult {
  beats: number
  beatP50: number
  beatP99: number
  releases: number
  releaseP50: number
  releaseP99: number
  errors: number
}

function load (addr: string, listeners: number): Promise<LoadResult> {
  const child = spawn(process.execPath, [here('./load.ts'), addr, String(INSTANCES), String(listeners), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load exited ${code}`)))))
}

async function measure (name: string, script: string, args: string[], listeners: number) {
  const { child, addr } = await startServer(script, args)
  const cpu0 = cpuMs(child.pid!)
  const r = await load(addr, listeners)
  const cpu = cpuMs(child.pid!) - cpu0
  child.kill('SIGTERM')
  return { name, ...r, cpuPct: (cpu / ((seconds + 6) * 1000)) * 100 }
}

const bare = await measure('bare node:http', here('./bare-server.ts'), [], 0)
const devBeats = await measure('dev server, beats only', here('../src/bin.ts'), ['--port', '0'], 0)
const dev = await measure(`dev server, beats + ${LISTENERS} listeners`, here('../src/bin.ts'), ['--port', '0'], LISTENERS)
const f = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')
const rows = [bare, devBeats, dev].map((r) => `| ${r.name} | ${r.beats} | ${f(r.beatP50)} | ${f(r.beatP99)} | ${r.releases} | ${f(r.releaseP50)} | ${f(r.releaseP99)} | ${r.cpuPct.toFixed(1)} | ${r.errors} |`)
const section = `## Nacos dev server (@flowtag/nacos-dev-server)

\`node packages/nacos-dev-server/bench/run.ts ${seconds}\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}).
${INSTANCES} instances registered then light-beating every 5 s (spread evenly), and ${LISTENERS} long-poll
listeners each holding a 30 s poll on a config republished every 500 ms, for ${seconds} s. Server and
load generator in separate processes on loopback. The baseline is a bare node:http server
answering the same beats with a fixed body; the dev server runs the beats alone (the like-for-like
ratio), then with the listeners, whose bursts (100 polls answered, re-sent and followed by a
GET, every 500 ms) queue some beats behind them.

| server | beats | beat p50 ms | beat p99 ms | long-poll releases | release p50 ms | release p99 ms | server CPU % | errors |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Beats only, dev/bare: p50 ${(devBeats.beatP50 / bare.beatP50).toFixed(2)}×, p99 ${(devBeats.beatP99 / bare.beatP99).toFixed(2)}×; with the listeners: p50 ${(dev.beatP50 / bare.beatP50).toFixed(2)}×, p99 ${(dev.beatP99 / bare.beatP99).toFixed(2)}×.
Release latency is publish → the listener's held poll answered (the client then GETs the content).
`
const file = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
const head = '# Benchmarks\n\nEach section is written by its benchmark; figures are ratios against a baseline measured in the same run, because these machines are shared and noisy.\n'
const doc = existsSync(file) ? readFileSync(file, 'utf8') : head
const re = /## Nacos dev server \(@flowtag\/nacos-dev-server\)[\s\S]*?(?=\n## |$)/
writeFileSync(file, re.test(doc) ? doc.replace(re, section.trimEnd() + '\n') : `${doc.trimEnd()}\n\n${section}`)
console.log(section)
