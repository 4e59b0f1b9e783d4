#!/usr/bin/env node
// `pnpm demo`: a local canary in one command. Starts Nacos (the embedded dev server, or the
// one NACOS_SERVER_ADDR names), the gateway, order-service v1/v2 and user-service v1/v2, each
// its own process; publishes a RuleSet sending testers and 10% of users to v2; drives traffic
// and shows the split per hop live; then moves v2 to 50% and 100% by publishing new RuleSets
// to Nacos — no restart — and ends with a summary. Ctrl-C stops everything cleanly.
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer, type NacosDevServer } from '@flowtag/nacos-dev-server'
import { startApp, type AppProcess } from './cluster.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from './rulesets.ts'
import { drive, Tally } from './traffic.ts'
import { runCanaryAct } from './canary-act.ts'

const STEP_SECONDS = Number(process.env.DEMO_STEP_SECONDS ?? 10)
const GATEWAY_PORT = Number(process.env.GATEWAY_PORT ?? 8080)
const STEPS = [10, 50, 100]
const tty = process.stdout.isTTY === true

let devServer: NacosDevServer | undefined
let client: NacosClient | undefined
const apps: AppProcess[] = []
let stopping: Promise<void> | undefined

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

async function shutdown(code: number): Promise<never> {
  stopping ??= (async () => {
    say('\nstopping: every instance deregisters, drains, then exits')
    await Promise.all(apps.map((a) => a.stop('SIGTERM')))
    await client?.close()
    await devServer?.close()
  })()
  await stopping
  process.exit(code)
}

process.once('SIGINT', () => void shutdown(130))
process.once('SIGTERM', () => void shutdown(143))

function bar(share: number): string {
  const width = 30
  const full = Math.round(share * width)
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`
}

function render(title: string, tally: Tally, elapsed: number): void {
  const lines = [
    `flowtag demo — ${title}   (rule version in force at the gateway: ${tally.ruleVersion ?? '?'}, ${elapsed.toFixed(0)} s)`,
    '',
    ...['order-service', 'user-service'].map((s) => {
      const v2 = tally.share(s, 'v2')
      return `  ${s.padEnd(14)} v1 ${((1 - v2) * 100).toFixed(1).padStart(5)}%  ${bar(v2)}  v2 ${(v2 * 100).toFixed(1).padStart(5)}%`
    }),
    '',
    `  requests ${tally.requests}   errors ${tally.errors}${tally.errors > 0 ? `   last: ${tally.lastError}` : ''}`
  ]
  if (tty) process.stdout.write(`\x1b[2J\x1b[H${lines.join('\n')}\n`)
  else say(lines.filter((l) => l !== '').join(' | '))
}

try {
  let nacosAddr = process.env.NACOS_SERVER_ADDR
  if (nacosAddr === undefined || nacosAddr === '') {
    devServer = await startNacosDevServer({ port: Number(process.env.NACOS_PORT ?? 8848) })
    nacosAddr = devServer.address
    say(`embedded Nacos dev server on http://${nacosAddr}/nacos`)
  } else say(`using Nacos at ${nacosAddr}`)
  const auth = process.env.NACOS_USERNAME ? { username: process.env.NACOS_USERNAME, password: process.env.NACOS_PASSWORD ?? '' } : {}
  client = new NacosClient({ serverAddr: nacosAddr, ...auth })

  await client.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(canaryRuleSet(1, STEPS[0]!)), 'json')
  say(`published RuleSet v1: testers and ${STEPS[0]}% of users to v2 (${RULES_GROUP}/${RULES_DATA_ID})`)

  const opts = { nacosAddr, env: { DRAIN_MS: '500' } }
  for (const [name, version] of [['user-service', 'v1'], ['user-service', 'v2'], ['order-service', 'v1'], ['order-service', 'v2']] as const) {
    apps.push(await startApp(name, version, opts))
  }
  const gateway = await startApp('gateway', 'v1', { ...opts, port: GATEWAY_PORT })
  apps.push(gateway)
  say(`started ${apps.map((a) => `${a.name}@${a.version} :${a.port}`).join(', ')}`)
  say(`try it yourself: curl -H 'x-user-id: alice' ${gateway.url}/api/orders/1`)

  if (process.env.DEMO_CANARY !== '0') {
    // The canary controller moves v2 by itself (DEMO_CANARY=0: the timed steps below instead).
    const acts = await runCanaryAct({
      client, nacosAddr, gateway, apps, say,
      intervalSeconds: Number(process.env.DEMO_INTERVAL_SECONDS ?? 4),
      dashboardPort: Number(process.env.DASHBOARD_PORT ?? 8090)
    })
    say('\nsummary (no process restarted by flowtag; every step and the rollback were RuleSets published by the controller):')
    for (const line of acts) say(line)
    await shutdown(0)
  }

  const summary: string[] = []
  for (const [i, percent] of STEPS.entries()) {
    if (i > 0) {
      await client.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(canaryRuleSet(i + 1, percent)), 'json')
    }
    let tally = new Tally()
    const traffic = drive({ gatewayUrl: gateway.url, users: 1000, testerShare: 0.02, concurrency: 8 }, () => tally)
    // The first second after a publish shows the switch itself; measure the step after it.
    const started = Date.now()
    let measuring = false
    while (Date.now() - started < STEP_SECONDS * 1000) {
      await new Promise((r) => setTimeout(r, 1000))
      if (!measuring && tally.ruleVersion === i + 1) {
        measuring = true
        tally = new Tally()
      }
      render(`step ${i + 1}/${STEPS.length}: v2 for testers + ${percent}% of users`, tally, (Date.now() - started) / 1000)
    }
    await traffic.stop()
    summary.push(
      `  step ${i + 1}: target ${percent}% (+2% testers) → order-service v2 ${(tally.share('order-service', 'v2') * 100).toFixed(1)}%, ` +
        `user-service v2 ${(tally.share('user-service', 'v2') * 100).toFixed(1)}%, ${tally.requests} requests, ${tally.errors} errors, rule v${tally.ruleVersion}`
    )
  }
  say('\nsummary (no process restarted; each step was one RuleSet published to Nacos):')
  for (const line of summary) say(line)
  await shutdown(0)
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`)
  await shutdown(1)
}
