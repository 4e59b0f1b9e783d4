// Steady load through the gateways, judging every answer: failed (not 200) or misrouted (a hop
// served by another lane than the RuleSet the gateway decided with gives).
import { compileRuleSet, evaluate, validateRuleSet, type CompiledRuleSet, type RuleSetInput } from '@flowtag/rules'
import { Agent, request } from 'undici'
import type { Hop } from '../../src/traffic.ts'

export interface Counts {
  sent: number
  failed: number
  misrouted: number
}

/** Headers a hostile client sends: forged lanes, junk, oversized and signed-looking values. */
export const HOSTILE: Array<Record<string, string>> = [
  { 'x-flow-tag': 'v2' },
  { 'x-flow-tag': 'v2~9999999999~demo~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
  { 'x-flow-tag': '../../etc/passwd' },
  { 'x-flow-tag': 'v'.repeat(5000) },
  { 'x-flow-tag': '' },
  { baggage: 'flowtag.lane=v2' },
  { baggage: `flowtag.lane=v2,${'k=v,'.repeat(3000)}x=1` },
  { baggage: '=;;,,flowtag.lane=%%%,\u00e9=\u00e9' },
  { 'x-flow-tag': 'v2', baggage: 'flowtag.lane=v2;prop=1' }
]

export class Load {
  /** Gateways to send to, round robin; scenarios take one out before stopping it (as a load balancer would on /ready). */
  readonly targets: string[]
  readonly counts: Counts = { sent: 0, failed: 0, misrouted: 0 }
  readonly errors: string[] = []
  hostile = false
  readonly #rules = new Map<number, CompiledRuleSet>()
  readonly #agent = new Agent({ connections: 16, keepAliveTimeout: 2000 })
  #running = false
  #workers: Array<Promise<void>> = []
  #n = 0

  constructor (targets: string[]) {
    this.targets = targets
  }

  /** Every RuleSet published: answers are judged by the version the gateway says it decided with. */
  addRules (doc: RuleSetInput): void {
    const rs = validateRuleSet(doc)
    this.#rules.set(rs.version, compileRuleSet(rs))
  }

  start (concurrency: number, pauseMs: number): void {
    this.#running = true
    this.#workers = Array.from({ length: concurrency }, () => this.#worker(pauseMs))
  }

  async stop (): Promise<void> {
    this.#running = false
    await Promise.all(this.#workers)
    await this.#agent.close()
  }

  snapshot (): Counts {
    return { ...this.counts }
  }

  #fail (kind: 'failed' | 'misrouted', why: string): void {
    this.counts[kind]++
    if (this.errors.length < 20) this.errors.push(`${kind}: ${why}`)
  }

  async #worker (pauseMs: number): Promise<void> {
    while (this.#running) {
      const i = this.#n++
      const target = this.targets[i % this.targets.length]
      if (target === undefined) {
        await new Promise((r) => setTimeout(r, 10))
        continue
      }
      const headers: Record<string, string> = { 'x-user-id': `user-${i % 500}` }
      if (i % 20 === 0) headers['x-tester'] = 'true'
      const hostile = this.hostile ? HOSTILE[i % HOSTILE.length] : undefined
      this.counts.sent++
      try {
        const res = await request(`${target}/api/orders/${i}`, { headers: { ...hostile, ...headers }, dispatcher: this.#agent, headersTimeout: 10_000, bodyTimeout: 10_000 })
        const body = (await res.body.json()) as { hops?: Hop[], error?: string, message?: string }
        if (res.statusCode !== 200) this.#fail('failed', `${res.statusCode} ${body.error ?? ''} ${body.message ?? ''}`)
        else this.#judge(headers, body.hops ?? [])
      } catch (err) {
        this.#fail('failed', `${target}: ${(err as Error).message}`)
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs))
    }
  }

  #judge (headers: Record<string, string>, hops: Hop[]): void {
    const gw = hops[0]
    // gateway, order-service, inventory-service (gRPC), user-service
    if (gw?.service !== 'gateway' || hops.length !== 4) return this.#fail('misrouted', `unexpected hops ${JSON.stringify(hops)}`)
    const rules = gw.ruleVersion == null ? undefined : this.#rules.get(gw.ruleVersion)
    if (rules === undefined) return this.#fail('misrouted', `gateway decided with unknown rule version ${gw.ruleVersion}`)
    const expected = evaluate(rules, { headers }).tag
    if (gw.lane !== expected) return this.#fail('misrouted', `gateway lane ${gw.lane}, rule version ${gw.ruleVersion} gives ${expected}`)
    for (const h of hops.slice(1)) {
      if (h.version !== expected || h.lane !== expected) return this.#fail('misrouted', `${h.service}@${h.version} (lane ${h.lane}) for lane ${expected}`)
    }
  }
}
