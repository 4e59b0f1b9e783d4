// Real Nest apps on loopback, both platforms: a Nest edge tags by rule and calls user-service by
// name; user-service v1 runs on Express, v2 on Fastify; the lane reaches the handler (@Lane()),
// a provider (LaneContext) and the wire (x-flow-tag), also after a JSON body is parsed.
import { NacosClient } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import type { INestApplication } from '@nestjs/common'
import t from 'tap'
import { FlowTagService } from '../src/index.ts'
import { edgeModule, FlowTagModule, platforms, startApp, usersModule } from './fixtures/apps.ts'
import { fastClient, startDev, testerRules } from './fixtures/nacos.ts'

const RULES = { dataId: 'rules.json', group: 'FLOWTAG' }

t.test('lanes across Nest hops on Express and Fastify', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
  t.teardown(() => admin.close())
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify(testerRules), 'json')
  const nacos = { serverAddr: dev.address, ...fastClient }
  const apps: INestApplication[] = []
  t.teardown(async () => { for (const app of apps.reverse()) await app.close() })

  const v1 = await startApp(usersModule('v1', FlowTagModule.forRoot({ service: 'user-service', version: 'v1', nacos, rules: RULES, cacheDir: false })), 'express')
  apps.push(v1.app)
  const v2 = await startApp(usersModule('v2', FlowTagModule.forRoot({ service: 'user-service', version: 'v2', nacos, rules: RULES, cacheDir: false })), 'fastify')
  apps.push(v2.app)
  await waitFor('both user-service lanes in Nacos', async () => (await admin.naming.instances('user-service')).length === 2)
  const listed = await admin.naming.instances('user-service')
  t.same(listed.map((i) => i.metadata.version).sort(), ['v1', 'v2'])
  t.same(listed.map((i) => i.port).sort(), [Number(new URL(v1.url).port), Number(new URL(v2.url).port)].sort(), 'each registered the port Nest listens on')

  for (const platform of platforms) {
    const edge = await startApp(edgeModule(FlowTagModule.forRoot({ service: 'gateway', mode: 'edge', nacos, rules: RULES, registration: false, cacheDir: false })), platform)
    apps.push(edge.app)
    t.equal(edge.app.get(FlowTagService).rules?.version, 1, `${platform} edge: the RuleSet is in force once listening`)

    const tester = await (await fetch(`${edge.url}/api`, { headers: { 'x-tester': 'true' } })).json()
    t.same(tester, { edge: 'v2', upstream: { version: 'v2', lane: 'v2', inService: 'v2', header: 'v2' } }, `${platform} edge: a tester goes to v2 (Fastify) and stays in v2`)
    const plain = await (await fetch(`${edge.url}/api`)).json()
    t.same(plain, { edge: 'v1', upstream: { version: 'v1', lane: 'v1', inService: 'v1', header: 'v1' } }, `${platform} edge: others go to v1 (Express)`)
    const forged = await (await fetch(`${edge.url}/api`, { headers: { 'x-flow-tag': 'v2' } })).json()
    t.match(forged, { edge: 'v1', upstream: { version: 'v1' } }, `${platform} edge: a client-sent tag is not trusted`)
  }

  // service mode carries the incoming tag, also across body parsing (Express body-parser, Fastify's parser)
  for (const [name, app] of [['express', v1], ['fastify', v2]] as const) {
    const res = await fetch(`${app.url}/users/echo`, { method: 'POST', headers: { 'x-flow-tag': 'canary-7', 'content-type': 'application/json' }, body: JSON.stringify({ n: 1 }) })
    t.same(await res.json(), { version: name === 'express' ? 'v1' : 'v2', lane: 'canary-7', inService: 'canary-7', body: { n: 1 } }, `${name}: the lane survives the JSON body`)
    const untagged = await (await fetch(`${app.url}/users/who`)).json()
    t.match(untagged, { lane: 'v1', inService: 'v1', header: null }, `${name}: an untagged request gets the RuleSet's default lane, as with the preset`)
  }

  // a rule change arrives live at the Nest edge
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify({ ...testerRules, version: 2, default: 'v2' }), 'json')
  const edge = apps[2]!
  await waitFor('rule v2 at the edge', () => edge.get(FlowTagService).rules?.version === 2)
  const url = `http://127.0.0.1:${(edge.getHttpServer().address() as { port: number }).port}`
  t.match(await (await fetch(`${url}/api`)).json(), { edge: 'v2', upstream: { version: 'v2' } })
})

t.test('a routing failure of FlowTagHttpClient answers 503 with its code, on both platforms', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const nacos = { serverAddr: dev.address, ...fastClient }
  for (const platform of platforms) {
    // no user-service instance anywhere: the call has nowhere to go
    const edge = await startApp(edgeModule(FlowTagModule.forRoot({ service: 'gateway', nacos, registration: false, cacheDir: false })), platform)
    t.teardown(() => edge.app.close())
    const res = await fetch(`${edge.url}/api`)
    t.equal(res.status, 503, `${platform}: 503, not a bare 500`)
    t.match(await res.json(), { statusCode: 503, code: /^FLOWTAG_OUTBOUND_/ }, `${platform}: the code in the body`)
  }
})
