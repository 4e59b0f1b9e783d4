import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { RULES_DATA_ID, RULES_GROUP } from './rulesets.ts'

const require = createRequire(import.meta.url)
/** The flowtag-rules CLI of the workspace's @flowtag/rules (run as its own process). */
const BIN = join(dirname(require.resolve('@flowtag/rules')), 'bin.ts')

/** The RuleSet in Nacos as the CLI names it. */
export function rulesDoc (nacosAddr: string, namespace = ''): string {
  return `nacos://${nacosAddr}/${RULES_GROUP}/${RULES_DATA_ID}${namespace === '' ? '' : `?namespace=${namespace}`}`
}

/** Run `flowtag-rules <args>`; resolves with its exit code and output. */
export function rulesCli (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? -1), stdout, stderr })
    })
  })
}
