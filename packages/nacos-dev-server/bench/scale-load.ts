// Load generator of the scale benchmarks (its own process), over Nacos's HTTP v1 API:
//   register <addr> <services> <perService> <port> [big]  registers the fleet (persistent
//     instances, so no beats load the run), 64 calls in flight; with `big`, also the 1,000
//     instances of `big`. Prints {registered, ms, perSecond, p50, p99, errors}.
//   update <addr> <services> <perService> <port> <seconds> [perSecond]  re-registers one instance after
//     another across the first <services> services (each call a new `t` in its metadata: the
//     send time, performance.timeOrigin + now()), 64 calls in flight, or paced at
//     [perSecond] calls a second. Prints {updates, ms,
//     perSecond, errors}.
import { Pool } from 'undici'
import { instanceIp, bigIp, laneOf, serviceName, BIG, BIG_SIZE } from './scale-fleet.ts'

const [cmd, addr, servicesArg, perServiceArg, portArg, extra, rateArg] = process.argv.slice(2)
const services = Number(servicesArg)
const perService = Number(perServiceArg)
const port = Number(portArg)
const pool = new Pool(`http://${addr}`, { connections: 64 })
const form = { 'content-type': 'application/x-www-form-urlencoded' }
const IN_FLIGHT = 64
let errors = 0

async function register (service: string, ip: string, metadata: Record<string, string>): Promise<void> {
  const body = new URLSearchParams({ serviceName: service, ip, port: String(port), ephemeral: 'false', metadata: JSON.stringify(metadata) }).toString()
  try {
    const res = await pool.request({ method: 'POST', path: '/nacos/v1/ns/instance', body, headers: form })
    await res.body.text()
    if (res.statusCode !== 200) errors++
  } catch {
    errors++
  }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}

async function inFlight (jobs: number, job: (k: number) => Promise<void>, until = () => false): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < jobs && !until()) await job(next++)
  }))
}

if (cmd === 'register') {
  const calls: Array<[string, string, Record<string, string>]> = []
  for (let s = 0; s < services; s++) for (let j = 0; j < perService; j++) calls.push([serviceName(s), instanceIp(s, j), { version: laneOf(j) }])
  if (extra === 'big') for (let j = 0; j < BIG_SIZE; j++) calls.push([BIG, bigIp(j), { version: laneOf(j) }])
  const lat: number[] = []
  const t0 = performance.now()
  await inFlight(calls.length, async (k) => {
    const t = performance.now()
    await register(...calls[k]!)
    lat.push(performance.now() - t)
  })
  const ms = performance.now() - t0
  console.log(JSON.stringify({ registered: calls.length, ms, perSecond: (calls.length / ms) * 1000, p50: pct(lat, 50), p99: pct(lat, 99), errors }))
} else if (cmd === 'update') {
  const seconds = Number(extra)
  const end = performance.now() + seconds * 1000
  const t0 = performance.now()
  let updates = 0
  const rate = Number(rateArg ?? 0)
  await inFlight(Number.MAX_SAFE_INTEGER, async (k) => {
    if (rate > 0) {
      const due = t0 + (k * 1000) / rate
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()))
      if (performance.now() >= end) return
    }
    const s = k % services
    const j = Math.floor(k / services) % perService
    await register(serviceName(s), instanceIp(s, j), { version: laneOf(j), t: String(performance.timeOrigin + performance.now()) })
    updates++
  }, () => performance.now() >= end)
  const ms = performance.now() - t0
  console.log(JSON.stringify({ updates, ms, perSecond: (updates / ms) * 1000, errors }))
} else {
  console.error('usage: scale-load.ts register|update <addr> <services> <perService> <port> [big|seconds]')
  process.exit(2)
}
await pool.close()
