import { Agent, request } from 'undici'

/** What one hop of an answer says: which service, which version served it, in which lane. */
export interface Hop {
  service: string
  version: string
  lane: string | null
  rule?: string | null
  ruleVersion?: number | null
}

/** Counts per hop and version, errors, and the rule version the gateway last reported. */
export class Tally {
  requests = 0
  errors = 0
  readonly byHop = new Map<string, Map<string, number>>()
  ruleVersion: number | null = null
  lastError = ''
  /** The first 100 error lines, for tests that tell kinds of failure apart. */
  readonly errorLines: string[] = []

  fail (line: string): void {
    this.errors++
    this.lastError = line
    if (this.errorLines.length < 100) this.errorLines.push(line)
  }

  record (hops: Hop[]): void {
    this.requests++
    for (const h of hops) {
      if (h.service === 'gateway') {
        this.ruleVersion = h.ruleVersion ?? null
        continue
      }
      let m = this.byHop.get(h.service)
      if (m === undefined) this.byHop.set(h.service, (m = new Map()))
      m.set(h.version, (m.get(h.version) ?? 0) + 1)
    }
  }

  share (service: string, version: string): number {
    const m = this.byHop.get(service)
    if (m === undefined) return 0
    let total = 0
    for (const n of m.values()) total += n
    return total === 0 ? 0 : (m.get(version) ?? 0) / total
  }
}

export interface TrafficOptions {
  gatewayUrl: string
  /** Distinct users the traffic is spread over (sticky splits key on them). */
  users: number
  /** Share of requests sent as a tester (`x-tester: true`). */
  testerShare: number
  concurrency: number
}

/**
 * Drive requests through the gateway until stopped; each answer is tallied into `tally()`,
 * which the caller may swap to start a new window. Bounded by the caller's stop().
 */
/** Every drive() still running: the demo's Ctrl-C stops them before the instances go. */
const running = new Set<{ stop(): Promise<void> }>()

/** Stop every drive() still running (the demo's shutdown, so no load hits draining instances). */
export async function stopAllTraffic (): Promise<void> {
  await Promise.all([...running].map((d) => d.stop()))
}

export function drive (opts: TrafficOptions, tally: () => Tally): { stop(): Promise<void> } {
  const agent = new Agent({ connections: opts.concurrency })
  let active = true
  let n = 0
  const worker = async () => {
    while (active) {
      const i = n++
      const headers: Record<string, string> = { 'x-user-id': `user-${i % opts.users}` }
      if ((i * 7919) % 1000 < opts.testerShare * 1000) headers['x-tester'] = 'true'
      const t = tally()
      try {
        const res = await request(`${opts.gatewayUrl}/api/orders/${i}`, { headers, dispatcher: agent })
        const body = (await res.body.json()) as { hops?: Hop[]; error?: string; message?: string; details?: string | null }
        if (res.statusCode !== 200) {
          t.fail(`${res.statusCode} ${body.error ?? ''} ${body.message ?? ''} ${body.details ?? ''}`.trimEnd())
        } else t.record(body.hops ?? [])
      } catch (err) {
        t.fail((err as Error).message)
      }
    }
  }
  const workers = Array.from({ length: opts.concurrency }, worker)
  let stopped: Promise<void> | undefined
  const handle = {
    stop () {
      stopped ??= (async () => {
        active = false
        await Promise.all(workers)
        await agent.close()
        running.delete(handle)
      })()
      return stopped
    }
  }
  running.add(handle)
  return handle
}
