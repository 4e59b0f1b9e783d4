// Who serves how much: samples the request counters of the demo's HTTP instances (their own
// Prometheus /metrics, `flowtag_demo_requests`) every second, so the chaos suite can tell how a
// new instance's share of its lane grows while it warms up.
import { setTimeout as sleep } from 'node:timers/promises'
import type { AppProcess } from '../../src/cluster.ts'

interface Sample {
  at: number
  /** Requests served so far by each instance answering then (probes and /metrics excluded). */
  counts: Map<AppProcess, number>
}

/** Requests served by one instance so far, from its /metrics; undefined when it does not answer. */
async function served (app: AppProcess): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${app.url}/metrics`, { signal: AbortSignal.timeout(2000) })).text()
    let n = 0
    for (const line of text.split('\n')) {
      if (!line.startsWith('flowtag_demo_requests')) continue
      if (/route="\/(health|ready)"/.test(line)) continue
      const m = /^flowtag_demo_requests(_total)?\{[^}]*\} ([0-9.e+]+)$/.exec(line)
      if (m !== null) n += Number(m[2])
    }
    return n
  } catch {
    return undefined
  }
}

export class ShareProbe {
  readonly #apps: () => readonly AppProcess[]
  readonly #samples: Sample[] = []
  #running = false
  #loop: Promise<void> | undefined

  /** `apps`: the instances to sample (read on each round, so instances started meanwhile count). */
  constructor (apps: () => readonly AppProcess[]) {
    this.#apps = apps
  }

  start (everyMs = 1000): void {
    this.#running = true
    this.#loop = (async () => {
      while (this.#running) {
        const at = Date.now()
        const apps = this.#apps().filter((a) => a.name === 'user-service' || a.name === 'order-service')
        const counts = new Map<AppProcess, number>()
        await Promise.all(apps.map(async (a) => {
          const n = await served(a)
          if (n !== undefined) counts.set(a, n)
        }))
        this.#samples.push({ at, counts })
        await sleep(Math.max(0, everyMs - (Date.now() - at)))
      }
    })()
  }

  async stop (): Promise<void> {
    this.#running = false
    await this.#loop
  }

  /**
   * `app`'s share of the requests its service and lane served between `from` and `to` (epoch
   * ms; the samples nearest inside), with the number of requests the lane served then. Instances
   * that stopped answering meanwhile count up to their last sample.
   */
  share (app: AppProcess, from: number, to: number): { share: number; lane: number } | undefined {
    const inside = this.#samples.filter((s) => s.at >= from && s.at <= to)
    const first = inside[0]
    const last = inside.at(-1)
    if (first === undefined || last === undefined || first === last) return undefined
    let lane = 0
    let own = 0
    const peers = new Set<AppProcess>()
    for (const s of inside) for (const a of s.counts.keys()) if (a.name === app.name && a.version === app.version) peers.add(a)
    for (const a of peers) {
      // From its first count in the interval (0 if it started within) to its last one.
      const seen = inside.filter((s) => s.counts.has(a))
      const start = first.counts.get(a) ?? 0
      const end = seen.at(-1)?.counts.get(a) ?? start
      lane += end - start
      if (a === app) own = end - start
    }
    return lane === 0 ? undefined : { share: own / lane, lane }
  }
}
