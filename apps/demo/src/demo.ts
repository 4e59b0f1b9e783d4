#!/usr/bin/env node
// `pnpm demo`: a local canary in one command. Starts Nacos (the embedded dev server, or the
// one NACOS_SERVER_ADDR names), the gateway, order-service v1/v2 and user-service v1/v2, each
// its own process; publishes a RuleSet sending testers and 10% of users to v2; drives traffic
// and shows the split per hop live; then moves v2 to 50% and 100% by publishing new RuleSets
// to Nacos — no restart — and ends with a summary. Then the rule-safety features: a shadow
// rule's predicted move printed before it is promoted, a lease that returns testers to v1 on
// its own, and a fallback receipt in `curl -v` once user-service v2 is stopped. Ctrl-C stops
// everything cleanly. With a JDK and Maven (or KAFKA_BROKERS), an async hop first: orders publish
// order-created to a real Kafka, handled in lanes by notification-service v1/v2, whose v2 is
// SIGKILLed under load to show its events move to stable with none lost. After the canary, a
// shadow act: order-service v3 (one changed field) gets 20% of order-service's GETs as mirrored
// copies, never a user, and the divergence report names the field.
import { execFile } from 'node:child_process'
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer, type NacosDevServer } from '@flowtag/nacos-dev-server'
import { rulesCli, rulesDoc } from './cli.ts'
import { startApp, waitForLog, type AppProcess } from './cluster.ts'
import { demoKafka, ensureTopic, EventLog, type DemoKafka } from './async-hop.ts'
import { runAsyncAct } from './async-act.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from './rulesets.ts'
import { drive, stopAllTraffic, Tally } from './traffic.ts'
import { runCanaryAct } from './canary-act.ts'
import { runShadowAct } from './shadow-act.ts'

const STEP_SECONDS = Number(process.env.DEMO_STEP_SECONDS ?? 10)
const GATEWAY_PORT = Number(process.env.GATEWAY_PORT ?? 8080)
const STEPS = [10, 50, 100]
const tty = process.stdout.isTTY === true

let devServer: NacosDevServer | undefined
let client: NacosClient | undefined
let kafka: DemoKafka | undefined
const apps: AppProcess[] = []
let stopping: Promise<void> | undefined

function say (line: string): void {
  process.stdout.write(`${line}\n`)
}

async function shutdown (code: number): Promise<never> {
  stopping ??= (async () => {
    say('\nstopping: the load first, then every instance deregisters, drains and exits')
    await stopAllTraffic()
    await Promise.all(apps.map((a) => a.stop('SIGTERM')))
    await client?.close()
    await devServer?.close()
    await kafka?.stop()
  })()
  await stopping
  process.exit(code)
}

// kafkajs 2.2.4 on Node 24 sets a timer with a negative delay when it connects (kafkajs#1751,
// harmless): keep its TimeoutNegativeWarning off the demo's screen, print every other warning.
process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning') process.stderr.write(`${w.name}: ${w.message}\n`)
})

process.once('SIGINT', () => void shutdown(130))
process.once('SIGTERM', () => void shutdown(143))

function bar (share: number): string {
  const width = 30
  const full = Math.round(share * width)
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`
}

function render (title: string, tally: Tally, elapsed: number): void {
  if (stopping !== undefined) return // Ctrl-C: the shutdown lines stay readable
  const lines = [
    `flowtag demo — ${title}   (rule version in force at the gateway: ${tally.ruleVersion ?? '?'}, ${elapsed.toFixed(0)} s)`,
    '',
    ...['order-service', 'inventory-service', 'user-service'].map((s) => {
      const v2 = tally.share(s, 'v2')
      return `  ${s.padEnd(14)} v1 ${((1 - v2) * 100).toFixed(1).padStart(5)}%  ${bar(v2)}  v2 ${(v2 * 100).toFixed(1).padStart(5)}%`
    }),
    '',
    `  requests ${tally.requests}   errors ${tally.errors}${tally.errors > 0 ? `   last: ${tally.lastError}` : ''}`
  ]
  if (tty) process.stdout.write(`\x1b[2J\x1b[H${lines.join('\n')}\n`)
  else say(lines.filter((l) => l !== '').join(' | '))
}

async function publishRules (doc: unknown): Promise<void> {
  await client!.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(doc), 'json')
}

async function waitForVersion (gateway: AppProcess, version: number): Promise<void> {
  const end = Date.now() + 15_000
  while (Date.now() < end) {
    const res = await fetch(`${gateway.url}/api/orders/0`, { headers: { 'x-user-id': 'probe' } })
    const body = (await res.json()) as { hops?: Array<{ ruleVersion?: number }> }
    if (body.hops?.[0]?.ruleVersion === version) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`rule version ${version} did not reach the gateway`)
}

async function testerPath (gateway: AppProcess): Promise<string> {
  const res = await fetch(`${gateway.url}/api/orders/0`, { headers: { 'x-tester': 'true' } })
  const body = (await res.json()) as { hops?: Array<{ service: string; version: string }> }
  return (body.hops ?? []).filter((h) => h.service !== 'gateway').map((h) => `${h.service}@${h.version}`).join(' -> ')
}

/** Shadow rule, lane lease, fallback receipt: each shown on the running cluster. */
async function features (gateway: AppProcess, nacosAddr: string, lastVersion: number): Promise<void> {
  const doc = rulesDoc(nacosAddr)
  let version = lastVersion + 1
  say(`\nshadow rule: live 10% of users in v2, shadow 40%, published as RuleSet v${version}; traffic for ${STEP_SECONDS} s`)
  await publishRules({ ...canaryRuleSet(version, 10), shadow: canaryRuleSet(version + 1, 40) })
  await waitForVersion(gateway, version)
  const tally = new Tally()
  const traffic = drive({ gatewayUrl: gateway.url, users: 1000, testerShare: 0.02, concurrency: 8 }, () => tally)
  await new Promise((r) => setTimeout(r, STEP_SECONDS * 1000))
  await traffic.stop()
  say(`  routed by the live rules: order-service v2 ${(tally.share('order-service', 'v2') * 100).toFixed(1)}% of ${tally.requests} requests`)
  const report = await rulesCli(['shadow', doc, '--metrics', `${gateway.url}/metrics`])
  say(`  $ flowtag-rules shadow ${doc} --metrics ${gateway.url}/metrics`)
  for (const line of report.stdout.trim().split('\n')) say(`  ${line}`)
  const promoted = await rulesCli(['promote', doc])
  say(`  $ flowtag-rules promote ${doc}\n  ${promoted.stdout.trim() || promoted.stderr.trim()}`)
  version += 2
  await waitForVersion(gateway, version)

  version++
  const expiresAt = new Date(Date.now() + 8000).toISOString()
  const leased = canaryRuleSet(version, 0)
  leased.rules = leased.rules!.map((r) => (r.name === 'testers' ? { ...r, expiresAt } : r))
  say(`\nlane lease: the testers rule (v2) expires at ${expiresAt} (RuleSet v${version}, nothing published after it)`)
  await publishRules(leased)
  await waitForVersion(gateway, version)
  say(`  now:            tester -> ${await testerPath(gateway)}`)
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiresAt) - Date.now()) + 500))
  say(`  after expiry:   tester -> ${await testerPath(gateway)}   (gateway log: "lease ran out")`)

  version++
  await publishRules(canaryRuleSet(version, 0))
  await waitForVersion(gateway, version)
  const userV2 = apps.find((a) => a.name === 'user-service' && a.version === 'v2')
  say('\nfallback receipt: stopping user-service v2, then a tester request through the gateway')
  await userV2?.stop('SIGTERM')
  await new Promise((r) => setTimeout(r, 1500))
  const url = `${gateway.url}/api/orders/1`
  say(`  $ curl -v -H 'x-tester: true' ${url}`)
  const out = await new Promise<string>((resolve) => {
    execFile('curl', ['-sv', '-H', 'x-tester: true', url], { timeout: 10_000 }, (err, stdout, stderr) => resolve(err === null ? stderr : `curl failed: ${err.message}`))
  })
  for (const line of out.split('\n').filter((l) => l.startsWith('< ') || l.startsWith('curl failed'))) say(`  ${line.trim()}`)
}

async function versionInForce (): Promise<number> {
  const doc = JSON.parse((await client!.config.get(RULES_DATA_ID, RULES_GROUP)) ?? '{}') as { version?: number }
  return doc.version ?? STEPS.length
}

/** The shadow act (shadow-act.ts): order-service v3 gets mirrored copies only; the report is printed. */
async function shadowAct (gateway: AppProcess, opts: { nacosAddr: string; env: Record<string, string>; onLog: (app: string, line: string) => void }): Promise<void> {
  await runShadowAct({
    client: client!,
    gateway,
    say,
    seconds: STEP_SECONDS,
    start: async (name, version, env) => {
      const app = await startApp(name, version, { ...opts, env: { ...opts.env, ...env } })
      apps.push(app)
      return app
    }
  })
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

  // The async hop: a real Kafka when there is one to use or start; every app then gets
  // KAFKA_BROKERS (order-service publishes, notification-service consumes).
  kafka = await demoKafka(say)
  if (kafka !== undefined) {
    process.env.KAFKA_BROKERS = kafka.brokers
    await ensureTopic(kafka.brokers, process.env.ORDER_EVENTS_TOPIC ?? 'order-created')
  }
  const events = new EventLog()
  const opts = { nacosAddr, env: { DRAIN_MS: '500' }, onLog: events.onLog }
  for (const [name, version] of [['user-service', 'v1'], ['user-service', 'v2'], ['inventory-service', 'v1'], ['inventory-service', 'v2'], ['order-service', 'v1'], ['order-service', 'v2']] as const) {
    apps.push(await startApp(name, version, opts))
  }
  const startConsumer = async (version: string): Promise<AppProcess> => {
    const app = await startApp('notification-service', version, opts)
    apps.push(app)
    await waitForLog(app, '"msg":"consuming"')
    return app
  }
  const consumerV2 = kafka === undefined ? undefined : (await startConsumer('v1'), await startConsumer('v2'))
  // FLOWTAG_DEBUG: the gateway shows fallback receipts to clients (x-flowtag-fallback)
  const gateway = await startApp('gateway', 'v1', { ...opts, port: GATEWAY_PORT, env: { ...opts.env, FLOWTAG_DEBUG: '1' } })
  apps.push(gateway)
  say(`started ${apps.map((a) => `${a.name}@${a.version} :${a.port}`).join(', ')}`)
  say(`try it yourself: curl -H 'x-user-id: alice' ${gateway.url}/api/orders/1`)
  if (consumerV2 !== undefined) {
    say(`place an order (async hop): curl -X POST -H 'x-tester: true' ${gateway.url}/api/orders/7`)
    await runAsyncAct({ gateway, log: events, consumerV2, startConsumer, say })
    apps.splice(apps.indexOf(consumerV2), 1) // SIGKILLed by the act; its successor is in apps
  }

  if (process.env.DEMO_CANARY !== '0') {
    // The canary controller moves v2 by itself (DEMO_CANARY=0: the timed steps below instead).
    const acts = await runCanaryAct({
      client,
      nacosAddr,
      gateway,
      apps,
      say,
      intervalSeconds: Number(process.env.DEMO_INTERVAL_SECONDS ?? 4),
      dashboardPort: Number(process.env.DASHBOARD_PORT ?? 8090)
    })
    say('\nsummary (no process restarted by flowtag; every step and the rollback were RuleSets published by the controller):')
    for (const line of acts) say(line)
    await shadowAct(gateway, opts)
    // The rule-safety features next, numbered after the last RuleSet.
    await features(gateway, nacosAddr, await versionInForce())
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
  await shadowAct(gateway, opts)
  await features(gateway, nacosAddr, await versionInForce())
  await shutdown(0)
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`)
  await shutdown(1)
}
