// End to end, with real processes on loopback: the Nacos dev server, the gateway, and
// order-service / user-service (HTTP) and inventory-service (gRPC) in v1 and v2, each its own process.
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { compileRuleSet, evaluate, validateRuleSet } from '@flowtag/rules'
import t from 'tap'
import { waitFor } from '@flowtag/test-kit'
import { startApp, type AppProcess } from '../src/cluster.ts'
import { canaryRuleSet, RULES_DATA_ID, RULES_GROUP } from '../src/rulesets.ts'
import { drive, Tally, type Hop } from '../src/traffic.ts'

// The embedded dev server, or a real Nacos when NACOS_SERVER_ADDR names one (CI does both);
// a namespace of its own keeps this run apart from anything else on that server.
const real = process.env.NACOS_SERVER_ADDR
const dev = real === undefined || real === '' ? await startNacosDevServer({ port: 0 }) : undefined
const nacosAddr = dev?.address ?? real!
const namespace = `e2e-${Date.now().toString(36)}`
const client = new NacosClient({ serverAddr: nacosAddr, namespace })
const apps: AppProcess[] = []
t.teardown(async () => {
  await Promise.all(apps.map((a) => a.stop('SIGKILL')))
  await client.close()
  await dev?.close()
})

const publish = (doc: unknown) => client.config.publish(RULES_DATA_ID, RULES_GROUP, typeof doc === 'string' ? doc : JSON.stringify(doc), 'json')
const start = async (name: string, version: string, env: Record<string, string> = {}) => {
  const app = await startApp(name, version, { nacosAddr, env: { NACOS_NAMESPACE: namespace, ...env } })
  apps.push(app)
  return app
}

async function get (gateway: AppProcess, headers: Record<string, string>): Promise<{ status: number; hops: Hop[]; body: Record<string, unknown> }> {
  const res = await fetch(`${gateway.url}/api/orders/1`, { headers })
  const body = (await res.json()) as { hops?: Hop[] }
  return { status: res.status, hops: body.hops ?? [], body }
}
// The HTTP hops (order-service, user-service); the gRPC hop between them is checked on its own.
const versions = (hops: Hop[]) => hops.filter((h) => h.service !== 'gateway' && h.service !== 'inventory-service').map((h) => `${h.service}@${h.version}`)
const grpcHop = (hops: Hop[]) => hops.find((h) => h.service === 'inventory-service')

async function instancesOf (service: string) {
  const res = await fetch(`http://${nacosAddr}/nacos/v1/ns/instance/list?serviceName=${service}&namespaceId=${namespace}`)
  return ((await res.json()) as { hosts: Array<{ port: number; metadata: Record<string, string> }> }).hosts
}

await publish(canaryRuleSet(1, 30))
const userV1 = await start('user-service', 'v1')
const userV2 = await start('user-service', 'v2')
await start('inventory-service', 'v1')
const inventoryV2 = await start('inventory-service', 'v2')
await start('order-service', 'v1')
const orderV2 = await start('order-service', 'v2', { DRAIN_MS: '1500' })
const gateway = await start('gateway', 'v1')
await waitFor('all instances registered', async () => ((await instancesOf('user-service')).length === 2 && (await instancesOf('order-service')).length === 2 && (await instancesOf('inventory-service')).length === 2 ? true : undefined), 15_000)

t.test('each user lands where the RuleSet puts them, sticky, and the split is within tolerance', async (t) => {
  const compiled = compileRuleSet(validateRuleSet(canaryRuleSet(1, 30)))
  let v2 = 0
  const users = 300
  for (let i = 0; i < users; i++) {
    const user = `u-${i}`
    const expected = evaluate(compiled, { headers: { 'x-user-id': user } }).tag
    const { status, hops } = await get(gateway, { 'x-user-id': user })
    t.equal(status, 200)
    if (versions(hops).join() !== `order-service@${expected},user-service@${expected}`) {
      t.fail(`user ${user}: expected ${expected} on both hops, got ${versions(hops).join()}`)
    }
    if (expected === 'v2') v2++
  }
  t.ok(Math.abs((v2 / users) * 100 - 30) <= 8, `${((v2 / users) * 100).toFixed(1)}% of users in v2 for a 30% split`)
  const again = await get(gateway, { 'x-user-id': 'u-7' })
  const first = evaluate(compiled, { headers: { 'x-user-id': 'u-7' } }).tag
  t.same(versions(again.hops), [`order-service@${first}`, `user-service@${first}`], 'sticky on a second visit')
})

t.test('a tagged request stays in v2 across both hops', async (t) => {
  for (let i = 0; i < 10; i++) {
    const { hops } = await get(gateway, { 'x-tester': 'true', 'x-user-id': `t-${i}` })
    t.same(versions(hops), ['order-service@v2', 'user-service@v2'])
    t.match(hops[0], { service: 'gateway', lane: 'v2', rule: 'testers' })
  }
  // a client cannot pick its lane at the edge by sending x-flow-tag itself
  const forged = await get(gateway, { 'x-flow-tag': 'v2', 'x-user-id': 'u-1' })
  const expected = evaluate(compileRuleSet(validateRuleSet(canaryRuleSet(1, 30))), { headers: { 'x-user-id': 'u-1' } }).tag
  t.same(versions(forged.hops), [`order-service@${expected}`, `user-service@${expected}`])
})

t.test('a forged x-flow-tag sent straight to order-service is not honoured (lanes are signed)', async (t) => {
  const order = apps.find((a) => a.name === 'order-service' && a.version === 'v1')!
  // a user the rules keep in v1, so only an honoured forged tag could move the request to v2
  const compiled = compileRuleSet(validateRuleSet(canaryRuleSet(1, 30)))
  const user = Array.from({ length: 50 }, (_, i) => `f-${i}`).find((u) => evaluate(compiled, { headers: { 'x-user-id': u } }).tag === 'v1')!
  for (const headers of [{ 'x-flow-tag': 'v2' }, { baggage: 'flowtag.lane=v2' }, { 'x-flow-tag': 'v2~9999999999~demo~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }]) {
    const res = await fetch(`${order.url}/orders/1?user=${user}`, { headers: { ...headers, 'x-user-id': user } })
    const body = (await res.json()) as { hops: Hop[] }
    t.equal(res.status, 200)
    t.same(body.hops.map((h) => `${h.service}@${h.version}:${h.lane}`), ['order-service@v1:v1', 'inventory-service@v1:v1', 'user-service@v1:v1'], `${Object.keys(headers)[0]}: ignored; order-service decides by its rules (v1)`)
  }
  // the gateway's hops carry a signed tag, which order-service honours, and so does
  // inventory-service on the gRPC hop (signed there too)
  const { hops } = await get(gateway, { 'x-tester': 'true' })
  t.same(hops.filter((h) => h.service !== 'gateway').map((h) => `${h.service}:${h.lane}`), ['order-service:v2', 'inventory-service:v2', 'user-service:v2'])
})

t.test('a rule change takes effect without restart; an invalid RuleSet never does', async (t) => {
  await publish(canaryRuleSet(2, 100))
  await waitFor('rule v2 at the gateway', async () => ((await get(gateway, { 'x-user-id': 'u-0' })).hops[0]?.ruleVersion === 2 ? true : undefined), 15_000)
  for (let i = 0; i < 30; i++) {
    t.same(versions((await get(gateway, { 'x-user-id': `u-${i}` })).hops), ['order-service@v2', 'user-service@v2'])
  }
  await publish({ version: 3, rules: [{ name: 'broken', lane: 'not a lane!' }] })
  await publish('{ not json')
  await new Promise((r) => setTimeout(r, 1500))
  const after = await get(gateway, { 'x-user-id': 'u-1' })
  t.equal(after.hops[0]?.ruleVersion, 2, 'the last good RuleSet stays in force')
  t.same(versions(after.hops), ['order-service@v2', 'user-service@v2'])
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text()
  t.match(metrics, /flowtag_demo_requests_total\{[^}]*service="gateway"[^}]*lane="v2"/, 'Prometheus text counts requests by lane')
})

t.test('the lane is kept across HTTP → gRPC → HTTP: gateway, order-service, inventory-service over gRPC, user-service', async (t) => {
  for (let i = 0; i < 10; i++) {
    const { status, hops } = await get(gateway, { 'x-tester': 'true', 'x-user-id': `g-${i}` })
    t.equal(status, 200)
    t.same(versions(hops), ['order-service@v2', 'user-service@v2'])
    t.match(grpcHop(hops), { service: 'inventory-service', version: 'v2', lane: 'v2' })
  }
  const registered = await instancesOf('inventory-service')
  t.same(registered.map((h) => h.metadata.protocol), ['grpc', 'grpc'], 'registered by the gRPC server, protocol=grpc')
})

t.test('a killed gRPC instance fails no call; with no inventory-service v2 the gRPC hop falls back to v1, the lane goes on', async (t) => {
  const tally = new Tally()
  const load = drive({ gatewayUrl: gateway.url, users: 200, testerShare: 1, concurrency: 6 }, () => tally)
  await waitFor('some load', async () => (tally.requests > 50 ? true : undefined))
  inventoryV2.child.kill('SIGKILL') // no deregistration: still listed in Nacos until its beats stop
  const before = tally.requests
  await waitFor('load after the kill', async () => (tally.requests > before + 200 ? true : undefined))
  await load.stop()
  // Calls the instance had not answered are retried on v1; so are those it had answered but
  // died before their status (grpc-js writes the two apart): Check is in order-service's
  // idempotentMethods, so its reply is held until the status.
  t.equal(tally.errors, 0, `no failed request (errors: ${tally.errorLines.join('; ') || 'none'})`)
  for (let i = 0; i < 5; i++) {
    const { status, hops } = await get(gateway, { 'x-tester': 'true' })
    t.equal(status, 200)
    t.match(grpcHop(hops), { service: 'inventory-service', version: 'v1', lane: 'v2' }, 'stable serves the gRPC hop, the tag travels on')
    t.same(versions(hops), ['order-service@v2', 'user-service@v2'], 'and the next HTTP hop is back in v2')
  }
})

t.test('with no user-service v2, the user hop falls back to v1 while order stays in v2', async (t) => {
  t.equal(await userV2.stop(), 0, 'user-service v2 stopped cleanly')
  await waitFor('user-service v2 gone from Nacos', async () => ((await instancesOf('user-service')).every((h) => h.metadata.version === 'v1') ? true : undefined), 15_000)
  await new Promise((r) => setTimeout(r, 300))
  for (let i = 0; i < 10; i++) {
    const { status, hops } = await get(gateway, { 'x-tester': 'true' })
    t.equal(status, 200)
    t.same(versions(hops), ['order-service@v2', 'user-service@v1'])
  }
})

t.test('killing an instance under load fails no request', async (t) => {
  await publish(canaryRuleSet(4, 0))
  await waitFor('rule v4 at the gateway', async () => ((await get(gateway, { 'x-user-id': 'u-0' })).hops[0]?.ruleVersion === 4 ? true : undefined), 15_000)
  const second = await start('user-service', 'v1')
  await waitFor('two user-service v1 instances', async () => ((await instancesOf('user-service')).length === 2 ? true : undefined), 15_000)
  await new Promise((r) => setTimeout(r, 500))
  const tally = new Tally()
  const load = drive({ gatewayUrl: gateway.url, users: 500, testerShare: 0, concurrency: 8 }, () => tally)
  await waitFor('some load', async () => (tally.requests > 100 ? true : undefined), 15_000)
  userV1.child.kill('SIGKILL')
  const before = tally.requests
  await waitFor('load after the kill', async () => (tally.requests > before + 300 ? true : undefined), 15_000)
  await load.stop()
  t.equal(tally.errors, 0, `no failed request (last error: ${tally.lastError || 'none'})`)
  t.ok(tally.share('user-service', 'v1') === 1)
  t.ok(second.child.exitCode === null, 'the surviving instance served the rest')
})

t.test('a stopped service deregisters before it stops answering', async (t) => {
  const port = orderV2.port
  const stopped = orderV2.stop('SIGTERM')
  await waitFor('order-service v2 deregistered', async () => ((await instancesOf('order-service')).some((h) => h.port === port) ? undefined : true), 5000)
  const health = await fetch(`${orderV2.url}/health`)
  t.equal(health.status, 200, 'alive after it left the registry')
  const order = await fetch(`${orderV2.url}/orders/9`, { headers: { 'x-flow-tag': 'v2' } })
  t.equal(order.status, 200, 'still serving callers that have not yet dropped it')
  const ready = await fetch(`${orderV2.url}/ready`)
  t.equal(ready.status, 503, 'and reports not ready while draining')
  t.equal(await stopped, 0, 'then exits cleanly')
})
