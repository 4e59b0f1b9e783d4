// The demo's canary act: @flowtag/canary releases the v2 lane (order-service and user-service v2,
// judged each against its v1) and moves it by itself. First a healthy lane
// is promoted step by step; then user-service v2, a downstream service of the lane, is redeployed
// failing 20% of its requests, and the controller rolls the whole lane back, naming user-service.
// The dashboard (with its lane view) runs meanwhile.
import { CanaryController, startDashboard, type CanaryState } from '@flowtag/canary'
import type { NacosClient } from '@flowtag/nacos'
import { startApp, type AppProcess } from './cluster.ts'
import { RULES_DATA_ID, RULES_GROUP } from './rulesets.ts'
import { drive, Tally } from './traffic.ts'

export interface CanaryActOptions {
  client: NacosClient
  nacosAddr: string
  gateway: AppProcess
  /** The demo's processes: the failing v2 replaces the healthy one here. */
  apps: AppProcess[]
  say: (line: string) => void
  intervalSeconds: number
  dashboardPort: number
}

/** Testers only in v2: where each canary starts from. */
function baseRules (version: number) {
  return {
    version,
    description: 'v2 for testers only; the canary controller adds the split',
    user: { header: 'x-user-id' },
    services: { 'order-service': { stable: 'v1', candidates: ['v2'] }, 'user-service': { stable: 'v1', candidates: ['v2'] } },
    rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' }],
    default: 'v1'
  }
}

export async function runCanaryAct (o: CanaryActOptions): Promise<string[]> {
  const { client, say } = o
  const tty = process.stdout.isTTY === true
  const summary: string[] = []
  const spec = {
    // Every service with v2 instances among those the RuleSet names (order-service, user-service).
    // inventory-service (gRPC) is left out: @flowtag/grpc's server records no per-lane figures yet,
    // and a service without figures is never passed (the lane would wait until its deadline).
    lane: 'v2',
    stable: 'v1',
    steps: [10, 50, 100],
    intervalMs: o.intervalSeconds * 1000,
    minRequests: 50,
    // The edge decides the lane: it must apply each step too (the lane's services are added).
    convergence: ['gateway'],
    thresholds: { relative: { p99FloorSeconds: 0.5 } },
    // The same for the sequential judge: only requests slower than 500 ms count as slow.
    sequential: { latency: { thresholdSeconds: 0.5 } },
    rules: { dataId: RULES_DATA_ID, group: RULES_GROUP }
  }
  const current = JSON.parse((await client.config.get(RULES_DATA_ID, RULES_GROUP)) ?? '{"version":0}') as { version: number }
  let version = current.version + 1
  let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined

  const watch = async (title: string): Promise<CanaryState> => {
    await client.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(baseRules(version++)), 'json')
    const controller = await CanaryController.start(spec, { nacos: client, tickMs: 250 })
    if (dashboard === undefined) {
      dashboard = await startDashboard({ controller, nacos: client, port: o.dashboardPort })
      say(`dashboard: ${dashboard.url}#token=${dashboard.token}   (promote and abort need the token)`)
    } else {
      // the next canary's page: same address
      const port = Number(new URL(dashboard.url).port)
      await dashboard.close()
      dashboard = await startDashboard({ controller, nacos: client, port, token: dashboard.token })
    }
    let tally = new Tally()
    let step = -1
    const traffic = drive({ gatewayUrl: o.gateway.url, users: 1000, testerShare: 0.02, concurrency: 6 }, () => tally)
    const render = setInterval(() => {
      const s = controller.state
      if (s.step !== step) {
        step = s.step
        tally = new Tally()
      }
      const last = s.history.at(-1)
      const lines = [
        `flowtag demo — ${title}`,
        `  canary ${s.phase}  step ${s.step + 1}/${s.spec.steps.length}  v2 weight ${s.weight}%  rule v${s.ruleVersion ?? '?'} on ${controller.convergence.applied}/${controller.convergence.total} instances`,
        `  this step: order-service v2 ${(tally.share('order-service', 'v2') * 100).toFixed(1)}%, user-service v2 ${(tally.share('user-service', 'v2') * 100).toFixed(1)}% of ${tally.requests} requests, ${tally.errors} errors`,
        `  lane v2: ${(s.lane?.services ?? []).map((x) => `${x.service} ${x.verdict}`).join(', ') || 'not judged yet'}`,
        `  last decision: ${last?.event ?? ''} ${last?.message ?? ''}`,
        `  dashboard ${dashboard?.url ?? ''}`
      ]
      if (tty) process.stdout.write(`\x1b[2J\x1b[H${lines.join('\n')}\n`)
      else say(lines.slice(1, 5).join(' |'))
    }, 1000)
    try {
      return await controller.done
    } finally {
      clearInterval(render)
      await traffic.stop()
    }
  }

  const promoted = await watch('act 1: the controller promotes a healthy v2, judging each step')
  summary.push(`  act 1: ${promoted.phase} after ${promoted.history.filter((e) => e.event === 'check').length} checks; steps ${promoted.history.filter((e) => e.event === 'step').map((e) => `${e.weight}%`).join(' → ')}`)

  say('act 2: user-service v2, downstream in the v2 lane, is redeployed with a bug: 20% of its requests fail')
  const i = o.apps.findIndex((a) => a.name === 'user-service' && a.version === 'v2')
  if (i >= 0) await o.apps[i]!.stop()
  const bad = await startApp('user-service', 'v2', { nacosAddr: o.nacosAddr, env: { DRAIN_MS: '500', FAIL_RATE: '0.2' } })
  o.apps.splice(i >= 0 ? i : o.apps.length, i >= 0 ? 1 : 0, bad)
  const rolled = await watch('act 2: user-service v2 fails 20% of its requests — the controller rolls the whole lane back')
  const why = rolled.history.find((e) => e.event === 'rollback')
  summary.push(`  act 2: ${rolled.phase} at ${rolled.history.filter((e) => e.event === 'step').at(-1)?.weight ?? 0}%, ${rolled.lane?.failing ?? 'no service'} failed the lane: ${why?.message ?? ''}`)

  // after the rollback: who serves now
  const after = new Tally()
  const traffic = drive({ gatewayUrl: o.gateway.url, users: 1000, testerShare: 0.02, concurrency: 6 }, () => after)
  await new Promise((r) => setTimeout(r, 2000))
  await traffic.stop()
  summary.push(`  after the rollback: order-service v2 served ${(after.share('order-service', 'v2') * 100).toFixed(1)}%, user-service v2 ${(after.share('user-service', 'v2') * 100).toFixed(1)}% of ${after.requests} requests (testers included), ${after.errors} errors`)
  await dashboard?.close()
  return summary
}
