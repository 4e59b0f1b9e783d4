/**
 * The judges by simulation: A/A and A/B canaries (bench/canary-sim.ts), each checked every
 * interval by the sequential judge, today's threshold judge and a naive repeated z-test, on the
 * same seeded traffic. Prints the tables and writes them into BENCHMARKS.md.
 *
 *   node bench/simulate.ts [--canaries 1000] [--seed 1] [--no-write]
 */
import { fileURLToPath } from 'node:url'
import { machine, numberArg, writeSection } from '@flowtag/test-kit/bench'
import { HOLD, ROLLOUT, SCENARIOS, simulate, summarizeOutcomes, type JudgeName, type Protocol, type Summary } from './canary-sim.ts'

const benchmarksFile = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url))
const HEADING = '## Canary judges by simulation (@flowtag/canary)'
const JUDGES: JudgeName[] = ['sequential', 'threshold', 'naive']
const TRAFFIC = [1, 200]

const canaries = numberArg('--canaries', 1000)
const seed = numberArg('--seed', 1)
const started = Date.now()

interface Row { protocol: Protocol, traffic: number, scenario: string, results: Record<JudgeName, Summary> }
const rows: Row[] = []
for (const protocol of [HOLD, ROLLOUT]) {
  for (const traffic of TRAFFIC) {
    for (const scenario of SCENARIOS) {
      const out = simulate({ scenario, protocol, candidatePerSecond: traffic, judges: JUDGES, canaries, seed })
      const results = Object.fromEntries(JUDGES.map((j) => [j, summarizeOutcomes(out[j])])) as Record<JudgeName, Summary>
      rows.push({ protocol, traffic, scenario: scenario.name, results })
      console.error(`${protocol.name}, ${traffic} req/s, ${scenario.name}: ${JUDGES.map((j) => `${j} ${pct(results[j].rollbackRate)}`).join(', ')}`)
    }
  }
}
const seconds = (Date.now() - started) / 1000

function pct (x: number): string {
  return `${(100 * x).toFixed(1)}%`
}

function cell (s: Summary): string {
  return `${pct(s.rollbackRate)} | ${s.medianRequests === undefined ? '–' : Math.round(s.medianRequests).toLocaleString('en')} | ${s.medianChecks === undefined ? '–' : s.medianChecks}`
}

function table (protocol: Protocol): string[] {
  return [
    '| candidate req/s | case | **sequential** rolled back | requests | minutes | **threshold** (today) rolled back | requests | minutes | naive z-test rolled back | requests | minutes |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.filter((r) => r.protocol === protocol).map((r) => `| ${r.traffic} | ${r.scenario} | ${JUDGES.map((j) => cell(r.results[j])).join(' | ')} |`)
  ]
}

const aa = rows.filter((r) => r.scenario === 'A/A').map((r) => r.results.sequential.rollbackRate)
const five = rows.filter((r) => r.scenario === 'errors 5x' && r.traffic === 1).map((r) => `${Math.round(r.results.sequential.medianRequests ?? NaN)} (${r.protocol.name})`)
const section = [
  HEADING,
  '',
  `\`node packages/canary/bench/simulate.ts --canaries ${canaries} --seed ${seed}\` — ${new Date().toISOString().slice(0, 10)}, ${machine()}, ${seconds.toFixed(0)} s.`,
  `${canaries.toLocaleString('en')} simulated canaries per row; every judge sees the same seeded traffic (a PRNG seeded by canary, interval and step share), judged every interval of 60 s by a model of the controller's check loop (pass, pause, \`failedChecks\` 2, rollback actions) with the default spec (\`minRequests\` 100, \`alpha\` 0.01). ` +
    'Stable fails 1% of its requests, durations log-normal (median 50 ms, σ 0.5) in the preset\'s 14 buckets; stable\'s counters hold 10 minutes of traffic before the canary. ' +
    'Candidate traffic is at the first step (5%): the service takes 20× that. "Rolled back" counts failed checks only (not deadlines): for A/A it is the false-rollback rate, otherwise the detection rate. "Requests" and "minutes" are medians over the rolled-back canaries: candidate requests and checks from the start to the rollback.',
  '',
  `**${HOLD.name}**: one step held at 5% for an hour, every check can roll back (the peeking case).`,
  '',
  ...table(HOLD),
  '',
  `**${ROLLOUT.name}**: the default steps, one passing check each, 60 checks at most.`,
  '',
  ...table(ROLLOUT),
  '',
  `Goals at the defaults: A/A false rollbacks ≤ 1% — the sequential judge's worst row here is ${pct(Math.max(...aa))}; a 5× error rate (1% → 5%) detected in a median of ≤ 400 candidate requests — ${five.join(', ')} at 1 req/s. ` +
    'At 200 req/s each check brings 12,000 candidate requests, so every detection there happens at the first or second check: the requests column is the interval\'s traffic, not what the test needed.',
  'The naive z-test (each check\'s whole window tested as if it were the only look, at the same alpha) shows what peeking costs; today\'s threshold judge rarely rolls back a healthy canary but misses most regressions (its relative error check needs +5 points, its p99 check a 2× ratio).',
  `The sequential judge leaves alone what it is not looking for: a 1.1× error rate is below \`minRatio\` 1.5, and it rolled back at most ${pct(Math.max(...rows.filter((r) => r.scenario === 'errors 1.1x').map((r) => r.results.sequential.rollbackRate)))} of those canaries (the naive z-test up to ${pct(Math.max(...rows.filter((r) => r.scenario === 'errors 1.1x').map((r) => r.results.naive.rollbackRate)))}). ` +
    'Small regressions at low traffic mostly pass the steps (1.5× errors at 1 req/s): before the 100% step, where stable has no traffic left to compare with, the candidate serves about 1,140 requests, and even a single one-sided z-test at 1% on all of them would find 1.5% against 1% only about 15% of the time. Holding a step longer buys that evidence (the first table).',
  ''
].join('\n')

console.log('\n' + section)
if (!process.argv.includes('--no-write')) {
  await writeSection(benchmarksFile, section, { start: HEADING })
  console.log(`written to ${benchmarksFile}`)
}
