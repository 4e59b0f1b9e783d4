// The CLI's view of shadow evaluation: the (live lane -> shadow lane) counter every edge exports
// (@flowtag/context, `flowtag.context.shadow_decisions`), read from the apps' Prometheus text.
import type { RuleSet } from './schema.ts'

/** The Prometheus family the OTel counter becomes (dots to underscores, `_total` for a counter). */
export const SHADOW_METRIC = 'flowtag_context_shadow_decisions_total'

export interface ShadowCount {
  liveLane: string
  shadowLane: string
  /** The shadow rule that decided, or `(default)`. */
  shadowRule: string
  liveVersion: string
  shadowVersion: string
  count: number
}

const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** The shadow samples in one Prometheus text exposition (other families are skipped). */
export function parseShadowCounts (text: string): ShadowCount[] {
  const out: ShadowCount[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${SHADOW_METRIC}{`)) continue
    const close = line.lastIndexOf('}')
    const labels: Record<string, string> = {}
    for (const m of line.slice(SHADOW_METRIC.length + 1, close).matchAll(LABEL)) labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    const count = Number(line.slice(close + 1).trim().split(' ')[0])
    if (!Number.isFinite(count)) continue
    out.push({
      liveLane: labels.live_lane ?? '',
      shadowLane: labels.shadow_lane ?? '',
      shadowRule: labels.shadow_rule ?? '',
      liveVersion: labels.live_version ?? '',
      shadowVersion: labels.shadow_version ?? '',
      count
    })
  }
  return out
}

/** Fetch every URL's /metrics text and sum the shadow samples across them. */
export async function readShadowCounts (urls: readonly string[]): Promise<ShadowCount[]> {
  const all: ShadowCount[] = []
  for (const url of urls) {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
    all.push(...parseShadowCounts(await res.text()))
  }
  return all
}

const pct = (n: number, total: number) => `${(total === 0 ? 0 : (n * 100) / total).toFixed(1)}%`

/**
 * "the shadow would move X% of requests from v1 to v2" per shadow rule, over the requests the
 * edges counted for this document's live and shadow versions (counts of earlier pairs skipped).
 */
export function formatShadowReport (rs: RuleSet, counts: readonly ShadowCount[]): string {
  const shadow = rs.shadow!
  const mine = counts.filter((c) => c.liveVersion === String(rs.version) && c.shadowVersion === String(shadow.version))
  const total = mine.reduce((s, c) => s + c.count, 0)
  const lines = [`shadow version ${shadow.version} next to live version ${rs.version}: ${total} requests counted`]
  if (total === 0) {
    lines.push('  no requests counted yet for this pair of versions (is the shadow in force at the edges?)')
    return `${lines.join('\n')}\n`
  }
  const rules = [...shadow.rules.map((r) => r.name), '(default)']
  let moved = 0
  for (const rule of rules) {
    const of = mine.filter((c) => c.shadowRule === rule)
    if (of.length === 0) continue
    const pairs = new Map<string, number>()
    for (const c of of) if (c.liveLane !== c.shadowLane) pairs.set(`${c.liveLane}\u0000${c.shadowLane}`, (pairs.get(`${c.liveLane}\u0000${c.shadowLane}`) ?? 0) + c.count)
    const decided = of.reduce((s, c) => s + c.count, 0)
    const parts: string[] = []
    for (const [key, n] of pairs) {
      const [from, to] = key.split('\u0000') as [string, string]
      moved += n
      parts.push(`${pct(n, total)} of requests from ${from} to ${to}`)
      // the way back, said even when nothing goes that way ("0% from v2 to v1")
      if (!pairs.has(`${to}\u0000${from}`)) parts.push(`${pct(0, total)} from ${to} to ${from}`)
    }
    const label = rule === '(default)' ? 'default lane' : `rule "${rule}"`
    lines.push(parts.length === 0
      ? `  ${label}: decides ${pct(decided, total)} of requests, all in the lane they have now`
      : `  ${label}: the shadow would move ${parts.join(', ')} (decides ${pct(decided, total)})`)
  }
  lines.push(`  in all: the shadow would move ${pct(moved, total)} of requests to another lane`)
  return `${lines.join('\n')}\n`
}
