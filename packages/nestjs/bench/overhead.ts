/**
 * The cost of FlowTagModule per request: the same Nest service with the module (service mode: the
 * lane from `x-flow-tag`, `/health` and `/ready`, per-lane metrics through the OTel API, the
 * handler reads `@Lane()`) against it without the module (the handler reads the header), on the
 * Express and on the Fastify platform. Each app in its own process, autocannon in another, the
 * Nacos dev server in this one (the module registers there). Writes its section in BENCHMARKS.md.
 *
 *   node bench/overhead.ts [--rounds 8] [--seconds 3] [--warmup 5] [--connections 32] [--no-write]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { firstLine, loadAverage, machine, median, numberArg, writeSection } from '@flowtag/test-kit/bench'

const self = fileURLToPath(import.meta.url)
const benchmarksFile = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
const HEADING = `## NestJS module overhead (@flowtag/nestjs) on Node ${process.versions.node.split('.')[0]}`
const VARIANTS = ['express-bare', 'express-flowtag', 'fastify-bare', 'fastify-flowtag'] as const
type Variant = typeof VARIANTS[number]
interface Measurement { rps: number, p99: number, errors: number, cpuUs: number }
const LANES = ['v1', 'v2']

async function server (variant: Variant, nacosAddr: string): Promise<void> {
  const { Controller, Get, Headers, Module } = await import('@nestjs/common')
  const { NestFactory } = await import('@nestjs/core')
  const withModule = variant.endsWith('-flowtag')
  const { FlowTagModule, Lane } = await import('../src/index.ts')

  // The same handler both ways; only where the lane comes from differs.
  class ItemController {
    item (lane: string | undefined) {
      return { sku: 'a-1', lane: lane ?? null }
    }

    cpu () {
      return process.cpuUsage()
    }
  }
  Controller()(ItemController)
  for (const name of ['item', 'cpu'] as const) Get(name === 'item' ? 'item' : '__cpu')(ItemController.prototype, name, Object.getOwnPropertyDescriptor(ItemController.prototype, name)!)
  ;(withModule ? Lane() : Headers('x-flow-tag'))(ItemController.prototype, 'item', 0)
  class AppModule {}
  Module({
    imports: withModule ? [FlowTagModule.forRoot({ service: 'bench-item', version: 'v1', nacos: { serverAddr: nacosAddr }, registration: { drainMs: 0 }, cacheDir: false })] : [],
    controllers: [ItemController]
  })(AppModule)

  let adapter
  if (variant.startsWith('fastify')) {
    const { FastifyAdapter } = await import('@nestjs/platform-fastify')
    adapter = new FastifyAdapter()
  } else {
    const { ExpressAdapter } = await import('@nestjs/platform-express')
    adapter = new ExpressAdapter()
  }
  const app = await NestFactory.create(AppModule, adapter, { logger: false })
  await app.listen(0, '127.0.0.1')
  const address = app.getHttpServer().address() as { port: number }
  process.stdout.write(`LISTENING ${address.port}\n`)
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

async function load (ports: Record<Variant, string>, rounds: number, seconds: number, connections: number, warmup: number): Promise<void> {
  type Result = { requests: { average: number, total: number }, latency: { p99: number }, errors: number, non2xx: number }
  const name = 'autocannon'
  const { default: autocannon } = await import(name) as { default: (opts: object) => Promise<Result> }
  let n = 0
  // Half the requests in lane v2, half in v1: what a service behind an edge receives.
  const requests = [{ setupRequest: (req: { headers?: Record<string, string> }) => { req.headers = { ...req.headers, 'x-flow-tag': LANES[n++ % 2]! }; return req } }]
  const url = (v: Variant) => `http://127.0.0.1:${ports[v]}/`
  for (const v of VARIANTS) await autocannon({ url: `${url(v)}item`, connections, duration: warmup, requests })
  const cpu = async (v: Variant) => { const u = await (await fetch(`${url(v)}__cpu`)).json() as { user: number, system: number }; return u.user + u.system }
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      const v = VARIANTS[(i + r) % VARIANTS.length]!
      const before = await cpu(v)
      const res = await autocannon({ url: `${url(v)}item`, connections, duration: seconds, requests })
      const cpuUs = (await cpu(v) - before) / Math.max(1, res.requests.total)
      process.stdout.write(JSON.stringify({ round: r, variant: v, rps: res.requests.average, p99: res.latency.p99, errors: res.errors + res.non2xx, cpuUs }) + '\n')
    }
  }
  process.stdout.write('DONE\n')
}

function child (args: string[]): ChildProcess {
  return spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
}

async function stop (cp: ChildProcess): Promise<void> {
  cp.kill('SIGTERM')
  await new Promise((resolve) => cp.exitCode !== null ? resolve(null) : cp.once('exit', resolve))
}

async function main (): Promise<void> {
  const rounds = numberArg('--rounds', 8)
  const seconds = numberArg('--seconds', 3)
  const warmup = numberArg('--warmup', 5)
  const connections = numberArg('--connections', 32)
  const loadStart = loadAverage()
  const { startNacosDevServer } = await import('@flowtag/nacos-dev-server')
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1' })
  const children: ChildProcess[] = []
  const results = new Map<Variant, Measurement[]>(VARIANTS.map((v) => [v, []]))
  try {
    const ports: Record<string, string> = {}
    for (const v of VARIANTS) {
      const c = child(['server', v, dev.address])
      children.push(c)
      ports[v] = (await firstLine(c, 'LISTENING ')).split(' ')[1]!
    }
    const gen = child(['load', JSON.stringify(ports), String(rounds), String(seconds), String(connections), String(warmup)])
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
          console.log(`round ${m.round + 1} ${m.variant.padEnd(15)} ${m.rps.toFixed(0).padStart(7)} req/s  ${m.cpuUs.toFixed(1)} us cpu/req  p99 ${m.p99} ms  errors ${m.errors}`)
        }
      })
      gen.once('exit', (code) => code === 0 ? resolve() : reject(new Error(`load generator exited with ${code}`)))
    })
  } finally {
    for (const c of children) await stop(c)
    await dev.close()
  }
  const loadEnd = loadAverage()
  const pair = (bare: Variant, withModule: Variant, what: string) => {
    const a = results.get(bare)!
    const b = results.get(withModule)!
    const tput = b.map((m, i) => m.rps / a[i]!.rps)
    const cpu = b.map((m, i) => m.cpuUs / a[i]!.cpuUs)
    return {
      row: `| ${what} | ${a.map((m) => m.rps.toFixed(0)).join(' / ')} | ${b.map((m) => m.rps.toFixed(0)).join(' / ')} | **${median(tput).toFixed(3)}x** (${tput.map((x) => x.toFixed(2)).join(' / ')}) | ` +
        `${median(a.map((m) => m.cpuUs)).toFixed(1)} → ${median(b.map((m) => m.cpuUs)).toFixed(1)} | **${median(cpu).toFixed(3)}x** (${cpu.map((x) => x.toFixed(2)).join(' / ')}) | ${Math.max(...a.map((m) => m.p99))} → ${Math.max(...b.map((m) => m.p99))} | ${[...a, ...b].reduce((s, m) => s + m.errors, 0)} |`,
      cpu: median(cpu),
      spread: Math.max(...cpu) - Math.min(...cpu)
    }
  }
  const express = pair('express-bare', 'express-flowtag', 'Express (`@nestjs/platform-express`)')
  const fastify = pair('fastify-bare', 'fastify-flowtag', 'Fastify (`@nestjs/platform-fastify`)')
  const verdict = (r: { cpu: number }) => r.cpu <= 1.05 ? 'within' : 'over'
  const section = [
    HEADING,
    '',
    `Run \`node packages/nestjs/bench/overhead.ts\` (${new Date().toISOString().slice(0, 10)}, ${machine()}; load average ${loadStart} at start, ${loadEnd} at the end: the machine is shared with other jobs).`,
    `The same Nest 12 service (one controller, \`GET /item\` answering \`{ sku, lane }\`) with \`FlowTagModule.forRoot()\` (service mode, registered in the Nacos dev server, the handler reads \`@Lane()\`) and without it (the handler reads the \`x-flow-tag\` header), on each platform; each app its own process, autocannon in another (${connections} connections, one ${warmup} s warm-up each, then ${rounds} rounds of ${seconds} s per app, order rotated each round; each module figure is divided by its bare twin in the same round). Every request carries \`x-flow-tag\` (v1 or v2, alternating). ` +
      'With the module each request is tagged (the lane read, checked and entered in AsyncLocalStorage, the lane in the request log, the receipt headers), counted for the per-lane metrics through the OpenTelemetry API (no SDK registered: a no-op, as in an app without an exporter), and `@Lane()` resolved.',
    '',
    '| platform | bare req/s per round | with module req/s per round | throughput module/bare (median, per round) | server CPU µs/request bare → module (medians) | CPU per request module/bare (median, per round) | worst p99 ms bare → module | errors |',
    '|---|---|---|---|---|---|---|---|',
    express.row,
    fastify.row,
    '',
    `Reading: with the module a request costs ${((express.cpu - 1) * 100).toFixed(1)}% more server CPU on Express and ${((fastify.cpu - 1) * 100).toFixed(1)}% on Fastify (medians; goal ≤ 1.05×: Express ${verdict(express)}, Fastify ${verdict(fastify)}). ` +
      (Math.max(express.spread, fastify.spread) > 0.1
        ? `The per-round ratios spread over ${express.spread.toFixed(2)} (Express) and ${fastify.spread.toFixed(2)} (Fastify), as wide as the effect: read the medians, not single rounds.`
        : `The per-round ratios stay within ${Math.max(express.spread, fastify.spread).toFixed(2)} of each other, so the medians are a fair reading.`),
    ''
  ].join('\n')
  console.log('\n' + section)
  if (process.argv.includes('--no-write')) return
  await writeSection(benchmarksFile, section, { start: HEADING })
  console.log(`written to ${benchmarksFile}`)
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'server') await server(rest[0] as Variant, rest[1]!)
else if (mode === 'load') await load(JSON.parse(rest[0]!), Number(rest[1]), Number(rest[2]), Number(rest[3]), Number(rest[4]))
else await main()
