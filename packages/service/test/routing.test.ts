// `app.flowtag.routing`: the preset's lane routing handed whole to a gRPC client, end to end on
// loopback (the Nacos dev server, gRPC servers registered in two lanes that honour only signed
// tags, a Fastify edge and an Express service calling them with `new FlowTagGrpc({ ...routing })`).
import { credentials, makeGenericClientConstructor, type ServiceDefinition } from '@grpc/grpc-js'
import { currentFlow } from '@flowtag/context'
import { FlowTagGrpc } from '@flowtag/grpc'
import { FlowTagGrpcServer } from '@flowtag/grpc/server'
import { NacosClient } from '@flowtag/nacos'
import { laneRoutingSchema } from '@flowtag/outbound/lanes'
import { waitFor } from '@flowtag/test-kit'
import express from 'express'
import Fastify from 'fastify'
import t from 'tap'
import { flowTagService } from '../src/express.ts'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown }
const Who: ServiceDefinition = {
  who: { path: '/test.Who/Who', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize }
}
const WhoClient = makeGenericClientConstructor(Who, 'Who')
type Reply = { version: string, lane: string | null }

function who (client: InstanceType<typeof WhoClient>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    (client as unknown as { who(req: object, cb: (err: Error | null, r: Reply) => void): void }).who({}, (err, r) => (err === null ? resolve(r) : reject(err)))
  })
}

const signing = { keys: [{ id: 'k1', secret: 'a-secret-of-32-characters-length' }], ttlSeconds: 60 }
const RULES = {
  version: 1,
  services: { inventory: { stable: 'v1', candidates: ['v2'] } },
  rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' }],
  default: 'v1'
}
const quiet = { warn: () => {}, info: () => {} }

t.test('new FlowTagGrpc({ ...app.flowtag.routing }) routes a gRPC call in the request\'s lane, signed', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const nacos = { serverAddr: dev.address, ...fastClient }
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
  t.teardown(() => admin.close())

  // inventory v1 and v2 over gRPC, in Nacos, honouring only tags signed with the service's keys
  for (const version of ['v1', 'v2']) {
    const client = new NacosClient(nacos)
    const server = new FlowTagGrpcServer({ nacos: client, registration: { service: 'inventory', version }, flow: { trust: { signed: signing } }, shutdownTimeoutMs: 1000, meter: false })
    server.addService(Who, { who: (_call: unknown, cb: (err: null, r: Reply) => void) => cb(null, { version, lane: currentFlow()?.tag ?? null }) })
    await server.listen('127.0.0.1:0')
    t.teardown(async () => { await server.close(); await client.close() })
  }
  await waitFor('inventory v1 and v2 in nacos', async () => (await admin.naming.instances('inventory')).length === 2)

  // a Fastify edge: its lane from the rules, its gRPC calls through its own routing
  const edge = Fastify()
  await edge.register(fastifyFlowTagService, { service: 'edge', mode: 'edge', nacos, rules: RULES, registration: false, signing })
  t.teardown(() => edge.close())
  t.same(Object.keys(edge.flowtag.routing).sort(), ['discovery', 'labelKey', 'lanes', 'signing', 'stableLane', 'strict'], 'exactly the shared routing options')
  t.ok(laneRoutingSchema.safeParse(edge.flowtag.routing).success, 'the shared schema takes it as it is')
  const grpc = new FlowTagGrpc({ ...edge.flowtag.routing, logger: quiet })
  const inventory = new WhoClient('nacos:///inventory', credentials.createInsecure(), grpc.clientOptions())
  t.teardown(() => { inventory.close(); grpc.close() })
  edge.get('/api', async () => who(inventory))
  await edge.ready()

  const tester = (await edge.inject({ url: '/api', headers: { 'x-tester': 'true' } })).json()
  t.same(tester, { version: 'v2', lane: 'v2' }, 'a tester: to v2, whose server honoured the signed tag')
  const plain = (await edge.inject('/api')).json()
  t.same(plain, { version: 'v1', lane: 'v1' }, 'others: to v1 (the rules\' stable lane)')

  // the same on Express: `ft.service.routing`
  const app = express()
  const ft = flowTagService({ service: 'express-edge', mode: 'edge', nacos, rules: RULES, registration: false, signing, signals: false, logger: { debug () {}, info () {}, warn () {}, error () {} } })
  app.use(ft)
  const grpc2 = new FlowTagGrpc({ ...ft.service.routing, logger: quiet })
  const inventory2 = new WhoClient('nacos:///inventory', credentials.createInsecure(), grpc2.clientOptions())
  t.teardown(() => { inventory2.close(); grpc2.close() })
  app.get('/api', (_req, res, next) => { who(inventory2).then((r) => res.json(r), next) })
  const server = await ft.listen(app, { port: 0, host: '127.0.0.1' })
  t.teardown(() => ft.close())
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/api`
  t.same(await (await fetch(url, { headers: { 'x-tester': 'true' } })).json(), { version: 'v2', lane: 'v2' }, 'Express: a tester to v2')
  t.same(await (await fetch(url)).json(), { version: 'v1', lane: 'v1' }, 'Express: others to v1')
})

t.test('without the service\'s signing, the signed-only servers refuse the lane (the routing carries the signing)', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const nacos = { serverAddr: dev.address, ...fastClient }
  const client = new NacosClient(nacos)
  const server = new FlowTagGrpcServer({ nacos: client, registration: { service: 'inventory', version: 'v2' }, flow: { trust: { signed: signing } }, shutdownTimeoutMs: 1000, meter: false })
  server.addService(Who, { who: (_call: unknown, cb: (err: null, r: Reply) => void) => cb(null, { version: 'v2', lane: currentFlow()?.tag ?? null }) })
  await server.listen('127.0.0.1:0')
  t.teardown(async () => { await server.close(); await client.close() })

  const edge = Fastify()
  await edge.register(fastifyFlowTagService, { service: 'edge', mode: 'edge', nacos, rules: RULES, registration: false })
  t.teardown(() => edge.close())
  t.notOk('signing' in edge.flowtag.routing, 'no signing, none in the routing')
  const grpc = new FlowTagGrpc({ ...edge.flowtag.routing, logger: quiet })
  const inventory = new WhoClient('nacos:///inventory', credentials.createInsecure(), grpc.clientOptions())
  t.teardown(() => { inventory.close(); grpc.close() })
  edge.get('/api', async () => who(inventory))
  await edge.ready()
  await waitFor('inventory v2 seen', async () => (await edge.flowtag.discovery.instances('inventory')).length === 1)
  t.same((await edge.inject({ url: '/api', headers: { 'x-tester': 'true' } })).json(), { version: 'v2', lane: null }, 'an unsigned tag is not honoured by a signed-only server')
})
