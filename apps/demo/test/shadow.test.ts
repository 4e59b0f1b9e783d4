// The demo's shadow act on real processes: the Nacos dev server (or NACOS_SERVER_ADDR), the
// gateway, order-service v1 and the act's v3 (another currency), user-service and
// inventory-service v1. The act mirrors 20% of order-service's GETs into v3; the divergence
// report (read from order-service's /metrics, as `flowtag shadow report` does) names the one
// changed field and nothing else, and no user request failed or reached v3.
import { waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { topology } from './fixtures/topology.ts'
import { RULES_DATA_ID, RULES_GROUP } from '../src/rulesets.ts'
import { CHANGED_FIELD, MIRROR_PERCENT, runShadowAct, SHADOW_LANE } from '../src/shadow-act.ts'

const { nacos, start } = await topology(t, 'shadow')

const base = {
  version: 1,
  user: { header: 'x-user-id' },
  services: { 'order-service': { stable: 'v1', candidates: ['v2'] }, 'user-service': { stable: 'v1', candidates: ['v2'] } },
  rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' }],
  default: 'v1'
}
await nacos.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(base), 'json')
// one at a time: each start loads TypeScript sources, and the machine may be shared
for (const name of ['user-service', 'inventory-service', 'order-service']) await start(name, 'v1')
const gateway = await start('gateway', 'v1')
await waitFor('instances registered', async () => ((await nacos.naming.instances('order-service')).length === 1 && (await nacos.naming.instances('gateway')).length === 1 && (await nacos.naming.instances('inventory-service')).length === 1) || undefined, 20_000)

t.test('the shadow act finds the changed field; the users are untouched', async (t) => {
  const said: string[] = []
  const { routes, tally, lines } = await runShadowAct({ client: nacos, gateway, start, say: (l) => said.push(l), seconds: 3, minCompared: 40, deadlineSeconds: 60 })
  const route = routes.find((r) => r.service === 'order-service' && r.route === '/orders/:id' && r.lane === SHADOW_LANE)
  t.ok(route !== undefined, `order-service /orders/:id in ${SHADOW_LANE} is in the report`)
  t.ok(route!.compared >= 40, `pairs judged: ${route!.compared}`)
  t.same(routes.map((r) => r.route), ['/orders/:id'], 'the only route mirrored: the scrapes that read the report are not copied')
  t.same(route!.fields.map((f) => f.field), [CHANGED_FIELD], 'the changed field, and nothing else (hops are declared noise, the rest agrees)')
  t.equal(route!.fields[0]?.count, route!.diverged, 'every diverging pair differs in it')
  t.equal(route!.diverged, route!.compared, 'every judged pair diverges: v3 always answers in another currency')
  t.equal(tally.errors, 0, `no user request failed${tally.errors > 0 ? `: ${tally.errorLines.slice(0, 3).join('; ')}` : ''}`)
  t.ok(tally.requests > 0, `the users' requests: ${tally.requests}`)
  t.equal(tally.share('order-service', SHADOW_LANE), 0, 'no user answer came from v3: only copies reach it')
  t.ok(lines.some((l) => l.includes(CHANGED_FIELD)), 'the printed report names the field')
  t.same(said, lines)
  t.comment(lines.join('\n'))
  t.ok(lines.some((l) => l.includes(`percent: ${MIRROR_PERCENT}`)), 'the act says what it published')

  // the act leaves the RuleSet without the mirror and v3 stopped
  const after = JSON.parse((await nacos.config.get(RULES_DATA_ID, RULES_GROUP)) ?? '{}') as { services?: Record<string, { mirror?: unknown }> }
  t.equal(after.services?.['order-service']?.mirror, undefined, 'the mirror is gone')
  await waitFor('v3 deregistered', async () => !(await nacos.naming.instances('order-service')).some((i) => i.metadata.version === SHADOW_LANE) || undefined, 20_000)
})
