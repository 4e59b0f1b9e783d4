// Load generator (its own process): N instances beating every intervalMs (light beats after a
// register) and L long-poll listeners re-polling forever, while one config is republished at
// a fixed pace. Prints one JSON line of latencies.
import { Pool } from 'undici'

const [addr, instancesArg, listenersArg, secondsArg] = process.argv.slice(2)
const instances = Number(instancesArg)
const listeners = Number(listenersArg)
const seconds = Number(secondsArg)
const pool = new Pool(`http://${addr}`, { connections: 64, pipelining: 1 })
const longPool = new Pool(`http://${addr}`, { connections: listeners + 1, bodyTimeout: 60_000, headersTimeout: 60_000 })
const form = { 'content-type': 'application/x-www-form-urlencoded' }

const beatLatency: number[] = []
const releaseLatency: number[] = []
let errors = 0
let stop = false

async function timed (method: 'PUT' | 'POST', path: string, body: string, into: number[] | undefined): Promise<void> {
  const t0 = performance.now()
  try {
    const res = await pool.request({ method, path, body, headers: form })
    await res.body.text()
    if (res.statusCode !== 200) errors++
    into?.push(performance.now() - t0)
  } catch {
    errors++
  }
}

const ident = (i: number) => `serviceName=bench-${i % 50}&ip=127.0.0.1&port=${20000 + i}`

let registered = 0
async function instance (i: number, intervalMs: number): Promise<void> {
  await timed('POST', '/nacos/v1/ns/instance', ident(i), undefined)
  registered++
  // spread the beats over the interval, as independent processes would
  await new Promise((r) => setTimeout(r, (i * intervalMs) / instances))
  while (!stop) {
    const next = Date.now() + intervalMs
    // Beats queued behind the start-up burst of 1,000 registrations measure the burst, not the beat.
    await timed('PUT', '/nacos/v1/ns/instance/beat', ident(i), registered === instances ? beatLatency : undefined)
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())))
  }
}

let publishedAt = 0
async function listener (j: number): Promise<void> {
  let md5 = ''
  while (!stop) {
    const body = `Listening-Configs=${encodeURIComponent(`bench.json\u0002BENCH\u0002${md5}\u0001own-${j}\u0002BENCH\u0002\u0001`)}`
    try {
      const res = await longPool.request({ method: 'POST', path: '/nacos/v1/cs/configs/listener', body, headers: { ...form, 'Long-Pulling-Timeout': '30000' } })
      const text = await res.body.text()
      if (text.includes('bench.json')) {
        if (md5 !== '') releaseLatency.push(performance.now() - publishedAt)
        const got = await pool.request({ method: 'GET', path: '/nacos/v1/cs/configs?dataId=bench.json&group=BENCH' })
        md5 = String(got.headers['content-md5'] ?? '')
        await got.body.text()
      }
    } catch {
      if (!stop) errors++
    }
  }
}

async function publisher (): Promise<void> {
  let n = 0
  while (!stop) {
    publishedAt = performance.now()
    await timed('POST', '/nacos/v1/cs/configs', `dataId=bench.json&group=BENCH&content=${n++}`, undefined)
    await new Promise((r) => setTimeout(r, 500))
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

const work = [...Array.from({ length: instances }, (_, i) => instance(i, 5000))]
if (listeners > 0) work.push(publisher(), ...Array.from({ length: listeners }, (_, j) => listener(j)))
await new Promise((r) => setTimeout(r, seconds * 1000))
stop = true
await Promise.race([Promise.allSettled(work), new Promise((r) => setTimeout(r, 6000))])
console.log(
  JSON.stringify({
    beats: beatLatency.length,
    beatP50: pct(beatLatency, 50),
    beatP99: pct(beatLatency, 99),
    releases: releaseLatency.length,
    releaseP50: pct(releaseLatency, 50),
    releaseP99: pct(releaseLatency, 99),
    errors
  })
)
await pool.destroy()
await longPool.destroy()
process.exit(0)
