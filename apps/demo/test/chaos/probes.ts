// Polling probes the chaos suite and the cluster failover test share: wait for a condition, and
// the time until every gateway decides with a RuleSet version.
import { setTimeout as sleep } from 'node:timers/promises'
import type { AppProcess } from '../../src/cluster.ts'

/** Milliseconds until `check` holds (a throw counts as not yet); throws after `ms` with the last error. */
export async function until (what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<number> {
  const t0 = Date.now()
  let last = ''
  for (;;) {
    try {
      if (await check()) return Date.now() - t0
    } catch (err) {
      last = ` (last: ${(err as Error).message})` // a server still down (or electing) answers with an error
    }
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}${last}`)
    await sleep(100)
  }
}

/** Time until every gateway decides with `v` (asked directly, outside the load). */
export async function applied (v: number, gateways: AppProcess[]): Promise<number> {
  return until(`rule version ${v} at the gateways`, async () => {
    for (const g of gateways) {
      const body = (await (await fetch(`${g.url}/api/orders/probe`, { headers: { 'x-user-id': 'probe' } })).json()) as { hops?: Array<{ ruleVersion?: number }> }
      if (body.hops?.[0]?.ruleVersion !== v) return false
    }
    return true
  }, 30_000)
}
