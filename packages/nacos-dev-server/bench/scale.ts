// The dev server holding 10,000 instances (500 services × 20): how fast it takes registrations,
// against a bare node:http server answering the same calls in the same run, and how fast it pushes
// changed lists to a subscriber watching 200 of the services over gRPC. Server, load generator and
// subscriber each run in their own process on loopback.
// Usage: node bench/scale.ts [seconds=10] [--no-write]  — writes its section of BENCHMARKS.md.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { cpus, loadavg } from 'node:os'
import { createInterface } from 'node:readline'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const seconds = Number(process.argv[2] ?? 10)
const SERVICES = 500
const PER_SERVICE = 20
const SUBSCRIBED = 200
const HEADING = '## Nacos dev server at scale (@flowtag/nacos-dev-server)'

function startServer (script: string, args: string[] = []): Promise<{ child: ChildProcess; addr: string }> {
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

function stop (child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.removeAllListeners('exit')
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

interface LoadResult { registered: number, updates: number, perSecond: number, p50: number, p99: number, errors: number }
interface PushResult { pushes: number, perSecond: number, p50: number, p99: number, cpuMs: number }

function run (args: string[]): Promise<LoadResult> {
  const child = spawn(process.execPath, [here('scale-load.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load exited ${code}`)))))
}

const procStat = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
const cpuMs = (pid: number) => ((Number(procStat(pid)[11]) + Number(procStat(pid)[12])) * 1000) / 100
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

const load0 = loadavg().map((x) => x.toFixed(1)).join(' / ')

// Registrations: the bare server first, then the dev server, the same 10,000 calls.
const bare = await startServer(here('bare-server.ts'))
const bareCpu0 = cpuMs(bare.child.pid!)
const bareReg = await run(['register', bare.addr, String(SERVICES), String(PER_SERVICE), '8080'])
const bareCpu = cpuMs(bare.child.pid!) - bareCpu0
await stop(bare.child)

const dev = await startServer(here('scale-server.ts'), ['0'])
const pid = dev.child.pid!
const rssEmpty = rssMiB(pid)
const devCpu0 = cpuMs(pid)
const devReg = await run(['register', dev.addr, String(SERVICES), String(PER_SERVICE), '8080'])
const devCpu = cpuMs(pid) - devCpu0
const rssFull = rssMiB(pid)

// Pushes: one subscriber process watching 200 services; the load generator re-registers their
// instances one after another (each a changed list, pushed at once: push delay 0).
const sub = spawn(process.execPath, [here('scale-subscriber.ts'), dev.addr, String(SUBSCRIBED), String(PER_SERVICE)], { stdio: ['pipe', 'pipe', 'inherit'] })
const lines = createInterface({ input: sub.stdout! })[Symbol.asyncIterator]()
const first = await lines.next()
if (first.value !== 'READY') throw new Error(`subscriber: ${first.value}`)
async function pushPhase (rate: number): Promise<{ upd: LoadResult, pushed: PushResult, serverCpu: number }> {
  sub.stdin!.write('start\n')
  const cpu0 = cpuMs(pid)
  const upd = await run(['update', dev.addr, String(SUBSCRIBED), String(PER_SERVICE), '8080', String(seconds), String(rate)])
  const serverCpu = cpuMs(pid) - cpu0
  sub.stdin!.write('stop\n')
  return { upd, pushed: JSON.parse((await lines.next()).value as string), serverCpu }
}
const PACED = Number(process.env.PACED ?? 200)
const flat = await pushPhase(0)
const paced = await pushPhase(PACED)
sub.stdin!.write('exit\n')
await new Promise((r) => sub.once('exit', r))
await stop(dev.child)
const load1 = loadavg().map((x) => x.toFixed(1)).join(' / ')

const f = (x: number, d = 1) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
const i = (x: number) => Math.round(x).toLocaleString('en-US')
const section = `${HEADING}

\`node packages/nacos-dev-server/bench/scale.ts ${seconds}\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load average ${load0} at start and ${load1} at the end (other jobs share the machine).
The fleet: ${i(SERVICES)} services × ${PER_SERVICE} instances (${i(SERVICES * PER_SERVICE)}), registered over HTTP v1 as persistent instances (no beats), 64 calls in flight from a load-generator process. The baseline is a bare node:http server answering the same calls with a fixed body, in the same run. Then one subscriber process (@flowtag/nacos over gRPC) watches ${SUBSCRIBED} of the services while the load generator re-registers their instances one after another for ${seconds} s, 64 calls in flight, each call a changed list (a new send time in the metadata); the server pushes every change at once (push delay 0; Nacos's own 500 ms delay would merge changes of a service into one push).

| server | registrations | per second | call p50 ms | call p99 ms | server CPU ms per 1,000 | errors |
|---|---|---|---|---|---|---|
| bare node:http | ${i(bareReg.registered)} | ${i(bareReg.perSecond)} | ${f(bareReg.p50, 2)} | ${f(bareReg.p99, 2)} | ${f(bareCpu / bareReg.registered * 1000)} | ${bareReg.errors} |
| dev server | ${i(devReg.registered)} | ${i(devReg.perSecond)} | ${f(devReg.p50, 2)} | ${f(devReg.p99, 2)} | ${f(devCpu / devReg.registered * 1000)} | ${devReg.errors} |

Register rate, dev/bare: **${f(devReg.perSecond / bareReg.perSecond, 2)}×**. Dev server RSS ${f(rssEmpty)} MiB empty, ${f(rssFull)} MiB holding ${i(SERVICES * PER_SERVICE)} instances (**+${f(rssFull - rssEmpty)} MiB**).

| load | changes (re-registrations) | per second | pushes received | per second | change → subscriber p50 ms | p99 ms | server CPU ms per change | subscriber CPU ms per push | errors |
|---|---|---|---|---|---|---|---|---|---|
${([['64 in flight', flat], [`paced, ${PACED}/s`, paced]] as const).map(([name, r]) => `| ${name} | ${i(r.upd.updates)} | ${i(r.upd.perSecond)} | ${i(r.pushed.pushes)} | ${i(r.pushed.perSecond)} | ${f(r.pushed.p50, 2)} | ${f(r.pushed.p99, 2)} | ${f(r.serverCpu / Math.max(1, r.upd.updates), 3)} | ${f(r.pushed.cpuMs / Math.max(1, r.pushed.pushes), 3)} | ${r.upd.errors} |`).join('\n')}

Pushes received per change: ${f(flat.pushed.pushes / Math.max(1, flat.upd.updates), 2)} at full load, ${f(paced.pushed.pushes / Math.max(1, paced.upd.updates), 2)} paced (the subscriber's client reports a list once per push; the subscriber's rate is over the time from the start to its last push, queued pushes included: it waits for a quiet second before it reports). The latency is the load generator's send time to the subscriber's listener, across processes (their clocks are the same machine's).
`

console.log(section)
if (!process.argv.includes('--no-write')) {
  const file = here('../../../BENCHMARKS.md')
  const text = readFileSync(file, 'utf8')
  const start = text.indexOf(HEADING)
  if (start === -1) writeFileSync(file, `${text.trimEnd()}\n\n${section}`)
  else {
    const next = text.indexOf('\n## ', start + HEADING.length)
    writeFileSync(file, text.slice(0, start) + section + (next === -1 ? '' : text.slice(next)))
  }
}
