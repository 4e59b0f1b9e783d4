// The demo's shadow act: order-service v3, whose orders come in another currency (one changed
// field, `/order/currency`), gets no user: a RuleSet change mirrors 20% of order-service's GETs
// into lane v3 as shadows. order-service's instances compare each copy's answer with the user's
// (@flowtag/shadow, `hops` declared noise) and count it on /metrics; the act then prints the
// divergence report as `flowtag shadow report order-service` reads it (the same figures), and
// what the users got meanwhile: every answer from v1 or v2, none failed.
import { readShadowReport, shadowReportText, type ShadowRouteFigures } from '@flowtag/canary'
import type { NacosClient } from '@flowtag/nacos'
import type { AppProcess } from './cluster.ts'
import { RULES_DATA_ID, RULES_GROUP } from './rulesets.ts'
import { drive, Tally } from './traffic.ts'

/** The mirror lane and the share of order-service's requests copied into it. */
export const SHADOW_LANE = 'v3'
export const MIRROR_PERCENT = 20
/** What order-service v3 answers differently, and where that is in its answer. */
export const V3_CURRENCY = 'USD'
export const CHANGED_FIELD = '/order/currency'

export interface ShadowActOptions {
  client: NacosClient
  gateway: AppProcess
  /** Starts an instance of the demo (`startApp` with the demo's options); the act stops what it starts. */
  start: (name: string, version: string, env: Record<string, string>) => Promise<AppProcess>
  say: (line: string) => void
  /** Traffic at least this long. @default 10 */
  seconds?: number
  /** And until order-service's instances have judged this many pairs, within `deadlineSeconds`. @default 100 */
  minCompared?: number
  /** @default 60 */
  deadlineSeconds?: number
}

export interface ShadowActResult {
  /** The report as `flowtag shadow report order-service` reads it. */
  routes: ShadowRouteFigures[]
  /** The users' requests meanwhile (through the gateway). */
  tally: Tally
  /** The act's lines (also said). */
  lines: string[]
}

/** The RuleSet before the act, with order-service's service entry mirroring into v3. */
function mirrorRuleSet (current: Record<string, unknown>, version: number): Record<string, unknown> {
  const services = { ...(current.services as Record<string, Record<string, unknown>> | undefined) }
  const order = services['order-service'] ?? { stable: 'v1' }
  const candidates = [...new Set([...((order.candidates as string[] | undefined) ?? []), SHADOW_LANE])]
  services['order-service'] = { ...order, candidates, mirror: { lane: SHADOW_LANE, percent: MIRROR_PERCENT } }
  return { ...current, version, description: `${MIRROR_PERCENT}% of order-service's GETs mirrored into ${SHADOW_LANE} (shadows, compared)`, services }
}

/** Pairs of order-service's mirror lane that its instances have judged, summed. */
function compared (routes: readonly ShadowRouteFigures[]): number {
  return routes.filter((r) => r.lane === SHADOW_LANE).reduce((n, r) => n + r.compared, 0)
}

export async function runShadowAct (o: ShadowActOptions): Promise<ShadowActResult> {
  const lines: string[] = []
  const say = (line: string): void => {
    lines.push(line)
    o.say(line)
  }
  const seconds = o.seconds ?? 10
  const minCompared = o.minCompared ?? 100
  const deadline = Date.now() + (o.deadlineSeconds ?? 60) * 1000
  const read = async () => (await readShadowReport(o.client.naming, { services: ['order-service'], service: 'order-service' })).routes

  say(`\nshadow act: order-service ${SHADOW_LANE} starts, answering its orders in ${V3_CURRENCY} (one changed field, ${CHANGED_FIELD}); no user is routed to it`)
  const v3 = await o.start('order-service', SHADOW_LANE, { ORDER_CURRENCY: V3_CURRENCY })
  const before = JSON.parse((await o.client.config.get(RULES_DATA_ID, RULES_GROUP)) ?? '{"version":0}') as Record<string, unknown> & { version: number }
  const tally = new Tally()
  let traffic: ReturnType<typeof drive> | undefined
  try {
    await until('order-service v3 registered', deadline, async () => (await o.client.naming.instances('order-service')).some((i) => i.metadata.version === SHADOW_LANE))
    const version = before.version + 1
    await o.client.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(mirrorRuleSet(before, version)), 'json')
    say(`  RuleSet v${version}: services.order-service.mirror = { lane: '${SHADOW_LANE}', percent: ${MIRROR_PERCENT} }; order-service compares each copy with the user's answer ("hops" declared noise)`)
    // Users only: testers would meet act 2's failing user-service v2, which is not this act's story.
    traffic = drive({ gatewayUrl: o.gateway.url, users: 1000, testerShare: 0, concurrency: 6 }, () => tally)
    const started = Date.now()
    let routes = await read()
    while (Date.now() < deadline && (Date.now() - started < seconds * 1000 || compared(routes) < minCompared)) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      routes = await read()
    }
    await traffic.stop()
    traffic = undefined
    // the last copies finish after their users' answers: read once they are counted
    await new Promise((resolve) => setTimeout(resolve, 500))
    routes = await read()
    say('  $ flowtag shadow report order-service')
    for (const line of shadowReportText(routes).split('\n')) say(`  ${line}`)
    say(`  the users meanwhile: ${tally.requests} requests, ${tally.errors} failed; order-service ${SHADOW_LANE} served ${(tally.share('order-service', SHADOW_LANE) * 100).toFixed(1)}% of them (only copies reach it)`)
    return { routes, tally, lines }
  } finally {
    await traffic?.stop()
    // the RuleSet as it was (a newer version), then v3 goes
    const now = JSON.parse((await o.client.config.get(RULES_DATA_ID, RULES_GROUP)) ?? '{"version":0}') as { version: number }
    await o.client.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify({ ...before, version: Math.max(now.version, before.version) + 1 }), 'json')
    await v3.stop()
  }
}

async function until (what: string, deadline: number, check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`shadow act: ${what} did not happen in time`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
