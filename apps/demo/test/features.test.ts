// Shadow rules, lane leases and fallback receipts end to end: the Nacos dev server, the gateway
// (debug headers on), order-service and user-service v1/v2, each its own process; the
// flowtag-rules CLI as another.
import { waitFor } from '@flowtag/test-kit'
import { execFile } from 'node:child_process'
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import t from 'tap'
import { rulesCli, rulesDoc } from '../src/cli.ts'
import { startApp, type AppProcess } from '../src/cluster.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from '../src/rulesets.ts'
import type { Hop } from '../src/traffic.ts'

const dev = await startNacosDevServer({ port: 0 })
const nacosAddr = dev.address
const namespace = `features-${Date.now().toString(36)}`
const client = new NacosClient({ serverAddr: nacosAddr, namespace })
const apps: AppProcess[] = []
t.teardown(async () => {
  await Promise.all(apps.map((a) => a.stop('SIGKILL')))
  await client.close()
  await dev.close()
})
const doc = rulesDoc(nacosAddr, namespace)
const publish = (d: unknown) => client.config.publish(RULES_DATA_ID, RULES_GROUP, JSON.stringify(d), 'json')
const start = async (name: string, version: string, env: Record<string, string> = {}) => {
  const app = await startApp(name, version, { nacosAddr, env: { NACOS_NAMESPACE: namespace, ...env } })
  apps.push(app)
  return app
}
// One polling helper for every test (@flowtag/test-kit); these waits are longer than its default.
const until = <T>(what: string, check: () => Promise<T>, ms = 15_000) => waitFor(what, check, ms)
async function instancesOf (service: string) {
  const res = await fetch(`http://${nacosAddr}/nacos/v1/ns/instance/list?serviceName=${service}&namespaceId=${namespace}`)
  return ((await res.json()) as { hosts: Array<{ metadata: Record<string, string> }> }).hosts
}

await publish(canaryRuleSet(1, 10))
await start('user-service', 'v1')
const userV2 = await start('user-service', 'v2')
// order-service calls inventory-service over gRPC on every request: one stable instance serves both lanes.
await start('inventory-service', 'v1')
await start('order-service', 'v1')
await start('order-service', 'v2')
const gateway = await start('gateway', 'v1', { FLOWTAG_DEBUG: '1' })
await until('all instances registered', async () => ((await instancesOf('user-service')).length === 2 && (await instancesOf('order-service')).length === 2 && (await instancesOf('inventory-service')).length === 1 ? true : undefined))

async function get (headers: Record<string, string>) {
  const res = await fetch(`${gateway.url}/api/orders/1`, { headers })
  const body = (await res.json()) as { hops?: Hop[] }
  return { status: res.status, hops: body.hops ?? [], receipt: res.headers.get('x-flowtag-fallback') }
}
const versions = (hops: Hop[]) => hops.filter((h) => h.service !== 'gateway' && h.service !== 'inventory-service').map((h) => `${h.service}@${h.version}`)
const ruleVersion = async () => (await get({ 'x-user-id': 'probe' })).hops[0]?.ruleVersion

t.test('a shadow rule\'s predicted move is printed before it is promoted', async (t) => {
  await publish({ ...canaryRuleSet(2, 10), shadow: canaryRuleSet(3, 40) })
  await until('rule v2 at the gateway', async () => ((await ruleVersion()) === 2 ? true : undefined))
  let liveV2 = 0
  for (let i = 0; i < 400; i++) if (versions((await get({ 'x-user-id': `s-${i}` })).hops)[0] === 'order-service@v2') liveV2++
  t.ok(liveV2 < 400 * 0.2, `routing still follows the live 10% (${liveV2} of 400 in v2)`)
  const report = await rulesCli(['shadow', doc, '--metrics', `${gateway.url}/metrics`])
  t.equal(report.code, 0, report.stderr)
  t.comment(report.stdout.trim())
  const m = /rule "canary": the shadow would move (\d+\.\d)% of requests from v1 to v2, 0\.0% from v2 to v1/.exec(report.stdout)
  t.ok(m !== null, report.stdout)
  t.ok(Number(m![1]) > 20 && Number(m![1]) < 40, `predicted move ${m![1]}% (a 10% -> 40% split)`)
  const promoted = await rulesCli(['promote', doc])
  t.equal(promoted.code, 0, promoted.stderr)
  await until('the promoted rule set at the gateway', async () => ((await ruleVersion()) === 4 ? true : undefined))
  let nowV2 = 0
  for (let i = 0; i < 400; i++) if (versions((await get({ 'x-user-id': `s-${i}` })).hops)[0] === 'order-service@v2') nowV2++
  t.ok(Math.abs(nowV2 / 400 - 0.4) < 0.1, `after promotion the 40% split routes (${nowV2} of 400)`)
})

t.test('a lease running out returns traffic to v1 on its own', async (t) => {
  const leasedUntil = (expiresAt: string) => {
    const d = canaryRuleSet(5, 0)
    d.rules = d.rules!.map((r) => (r.name === 'testers' ? { ...r, expiresAt } : r))
    d.services = { 'order-service': { stable: 'v1', candidates: [{ lane: 'v2', expiresAt }] }, 'user-service': { stable: 'v1', candidates: [{ lane: 'v2', expiresAt }] } }
    return d
  }
  const file = `${t.testdir({ 'leased.json': JSON.stringify(leasedUntil(new Date(Date.now() - 1000).toISOString())) })}/leased.json`
  const refused = await rulesCli(['publish', file, doc])
  t.equal(refused.code, 1, 'publishing a lapsed lease is refused')
  t.match(refused.stderr, /FLOWTAG_RULES_LEASE_EXPIRED[\s\S]*rules\.0\.expiresAt/)
  const expiresAt = new Date(Date.now() + 5000).toISOString()
  await publish(leasedUntil(expiresAt))
  await until('rule v5 at the gateway', async () => ((await ruleVersion()) === 5 ? true : undefined))
  t.ok(Date.now() < Date.parse(expiresAt) - 500, 'the lease is still running (else the machine was too slow for this check)')
  t.same(versions((await get({ 'x-tester': 'true' })).hops), ['order-service@v2', 'user-service@v2'], 'in the lane while leased')
  await until('the lease end', async () => (Date.now() > Date.parse(expiresAt) + 300 ? true : undefined), 10_000)
  for (let i = 0; i < 5; i++) t.same(versions((await get({ 'x-tester': 'true' })).hops), ['order-service@v1', 'user-service@v1'], 'back to v1 with nothing published')
  t.ok(gateway.logs.some((l) => l.includes('lease ran out')), 'the gateway logged the lease end')
})

t.test('with user-service v2 stopped, curl -v through the gateway shows the receipt', async (t) => {
  await publish(canaryRuleSet(6, 0))
  await until('rule v6 at the gateway', async () => ((await ruleVersion()) === 6 ? true : undefined))
  t.equal(await userV2.stop(), 0)
  await until('user-service v2 gone', async () => ((await instancesOf('user-service')).every((h) => h.metadata.version === 'v1') ? true : undefined))
  await new Promise((r) => setTimeout(r, 300))
  // curl -v as a user would run it; where curl is not installed, the same request by fetch
  const url = `${gateway.url}/api/orders/1`
  const curl = await new Promise<{ code: number; out: string; missing: boolean }>((resolve) => {
    execFile('curl', ['-sv', '-H', 'x-tester: true', url], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : -1, out: stdout + stderr, missing: (err as NodeJS.ErrnoException | null)?.code === 'ENOENT' })
    })
  })
  if (curl.missing) {
    t.comment('curl is not installed: checking the same request with fetch')
    const res = await fetch(url, { headers: { 'x-tester': 'true' } })
    t.equal(res.headers.get('x-flowtag-fallback'), 'user-service:v2>v1(no-instance)', 'the receipt header')
    t.match(await res.text(), /"service":"order-service","version":"v2"/, 'order-service stayed in v2')
  } else {
    t.equal(curl.code, 0, curl.out)
    t.match(curl.out, /< x-flowtag-fallback: user-service:v2>v1\(no-instance\)/i, 'the receipt, in curl -v')
    t.match(curl.out, /"service":"order-service","version":"v2"/, 'order-service stayed in v2')
  }
  const inLane = await get({ 'x-user-id': 'u-1' })
  t.equal(inLane.receipt, null, 'no receipt for a request that stayed in its lane')
})
