// Writes the chaos figures into RELIABILITY.md: one dated section per target (and one for the
// Nacos cluster failover test), replaced on each run.
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Row {
  scenario: string
  sent: number
  failed: number
  misrouted: number
  recoveryMs?: number | undefined
  durationMs: number
  note?: string | undefined
}

const file = join(dirname(fileURLToPath(import.meta.url)), '../../../../RELIABILITY.md')
const HEAD = `# Reliability

Figures of the chaos suite (\`apps/demo/test/chaos\`, run by \`./scripts/test\` against the dev
server and real Nacos 2.5.0) and of the real Nacos cluster test. Each chaos section is rewritten by
its run. *Failed*: an answer other than 200 at the load generator. *Misrouted*: a hop served by
another lane than the RuleSet the gateway decided with gives (checked on every answer).
`

export async function writeReliability (target: string, rows: Row[], info: { elapsedS: number, outageMs: number, load: string }): Promise<void> {
  await writeSection(`## Chaos suite: ${target}`, [
    `${stamp()} UTC, ${info.elapsedS} s in all, Nacos outage ${info.outageMs / 1000} s, load average ${info.load} on a shared 2-core machine.`,
    'Topology: 2 gateways (3 during the outage) → order-service v1 ×2, v2 ×2 → inventory-service (gRPC) v1 ×2, v2 ×2 and user-service v1 ×2, v2 ×2, each its own process; lanes signed on every hop (gRPC included); a hop is misrouted when any of the four answers from another lane; load: 4 workers, 5 % testers, 500 sticky users.'
  ], rows)
}

/** `YYYY-MM-DD HH:MM` of now, UTC. */
export function stamp (): string {
  return new Date().toISOString().slice(0, 16).replace('T', ' ')
}

/** Replace (or append) the section headed `marker`: its intro lines, then the table of rows. */
export async function writeSection (marker: string, intro: string[], rows: Row[]): Promise<void> {
  const lines = [
    marker,
    '',
    ...intro,
    '',
    '| scenario | sent | failed | misrouted | recovery | took | note |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.scenario} | ${r.sent} | ${r.failed} | ${r.misrouted} | ${r.recoveryMs === undefined ? '—' : `${(r.recoveryMs / 1000).toFixed(2)} s`} | ${(r.durationMs / 1000).toFixed(1)} s | ${r.note ?? ''} |`),
    '',
    ''
  ].join('\n')
  let text = await readFile(file, 'utf8').catch(() => HEAD)
  const at = text.indexOf(marker)
  if (at >= 0) {
    const next = text.indexOf('\n## ', at + marker.length)
    text = text.slice(0, at) + lines + (next >= 0 ? text.slice(next + 1) : '')
  } else {
    text = `${text.trimEnd()}\n\n${lines.trimEnd()}\n`
  }
  await writeFile(file, text)
}
