// A subscriber of the scale benchmarks (its own process): a @flowtag/nacos client over gRPC
// watching the first <services> services. Prints READY once every list holds <perService>
// instances; then on "start" (stdin) counts pushes (listener calls) and, for each, the latency
// from the newest `t` in the list's metadata (the load generator's send time) to the call; on
// "stop" waits for the queued pushes (a quiet second), then prints (rates over start → last push) {pushes, ms, perSecond, p50, p99, cpuMs}; "exit" ends it.
import { createInterface } from 'node:readline'
// By path: the dev server does not depend on the client (a bench-only import).
import { NacosClient } from '../../nacos/src/index.ts'
import { serviceName } from './scale-fleet.ts'

const [addr, servicesArg, perServiceArg] = process.argv.slice(2)
const services = Number(servicesArg)
const perService = Number(perServiceArg)
const nacos = new NacosClient({ serverAddr: addr!, transport: 'grpc' })

let counting = false
let pushes = 0
let startedAt = 0
let lastPush = 0
let cpu0 = process.cpuUsage()
const lat: number[] = []
const seen = new Map<string, number>()

for (let s = 0; s < services; s++) {
  const name = serviceName(s)
  nacos.naming.subscribe(name, ({ instances }) => {
    const now = performance.timeOrigin + performance.now()
    let newest = 0
    for (const i of instances) newest = Math.max(newest, Number(i.metadata.t ?? 0))
    const before = seen.get(name) ?? 0
    seen.set(name, newest)
    if (!counting) return
    pushes++
    lastPush = performance.now()
    if (newest > before) lat.push(now - newest)
  })
}
for (;;) {
  const sizes = await Promise.all(Array.from({ length: services }, async (_, s) => (await nacos.naming.instances(serviceName(s))).length))
  if (sizes.every((n) => n >= perService)) break
  await new Promise((r) => setTimeout(r, 200))
}
console.log('READY')

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'start') { counting = true; pushes = 0; lat.length = 0; startedAt = performance.now(); cpu0 = process.cpuUsage() }
  if (line === 'stop') {
    // Drain: pushes still queued count, until a quiet second (at most 60 s).
    const until = performance.now() + 60_000
    while (performance.now() - lastPush < 1000 && performance.now() < until) await new Promise((r) => setTimeout(r, 100))
    const ms = lastPush - startedAt
    const cpu = process.cpuUsage(cpu0)
    console.log(JSON.stringify({ pushes, ms, perSecond: (pushes / ms) * 1000, p50: pct(lat, 50), p99: pct(lat, 99), cpuMs: (cpu.user + cpu.system) / 1000 }))
    counting = false
  }
  if (line === 'exit') {
    await nacos.close()
    process.exit(0)
  }
}
