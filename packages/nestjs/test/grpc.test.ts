// gRPC in lanes through Nest: two Nest gRPC microservices (v1, v2) on FlowTagGrpcTransport
// register in Nacos with their lane; a Nest HTTP edge calls them through a ClientGrpc of
// FlowTagGrpcClientsModule (`nacos:///inventory-service`), each call in its request's lane.
import { fileURLToPath } from 'node:url'
import { NacosClient } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import { Controller, Get, Inject, Module, type INestMicroservice } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { GrpcMethod, Payload, type ClientGrpc } from '@nestjs/microservices'
import { lastValueFrom, type Observable } from 'rxjs'
import t from 'tap'
import { FlowTagModule, FlowTagService, Lane, LaneContext } from '../src/index.ts'
import { FlowTagGrpc, FlowTagGrpcClientsModule, FlowTagGrpcTransport } from '../src/grpc.ts'
import { method, params, startApp } from './fixtures/apps.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

const protoPath = fileURLToPath(new URL('./fixtures/inventory.proto', import.meta.url))
const RULES = { dataId: 'rules.json', group: 'FLOWTAG' }
const rules = {
  version: 1,
  services: { 'inventory-service': { stable: 'v1', candidates: ['v2'] } },
  rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' }],
  default: 'v1'
}

interface CheckReply { servedBy: string, lane: string, inProvider: string, sku: string }
interface Inventory { check(req: { sku: string }): Observable<CheckReply> }

function inventoryModule (version: string): new () => object {
  class InventoryController {
    readonly lanes: LaneContext
    constructor (lanes: LaneContext) {
      this.lanes = lanes
    }

    async check (data: { sku: string }, lane: string | undefined): Promise<CheckReply> {
      await new Promise((resolve) => setTimeout(resolve, 1))
      return { servedBy: version, lane: lane ?? '', inProvider: this.lanes.current ?? '', sku: data.sku }
    }
  }
  Controller()(InventoryController)
  Inject(LaneContext)(InventoryController, undefined, 0)
  method(InventoryController, 'check', GrpcMethod('Inventory', 'Check'))
  params(InventoryController, 'check', [0, Payload()], [1, Lane()])
  class InventoryModule {}
  // A pure microservice: FlowTagModule only for LaneContext; the transport registers it.
  Module({ imports: [FlowTagModule.forRoot({ service: 'inventory-service', nacos: { serverAddr: '127.0.0.1:1' }, registration: false, cacheDir: false })], controllers: [InventoryController] })(InventoryModule)
  return InventoryModule
}

t.test('Nest gRPC microservices in lanes, called from a Nest edge through ClientGrpc', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
  t.teardown(() => admin.close())
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify(rules), 'json')
  const nacos = { serverAddr: dev.address, ...fastClient }

  const services: INestMicroservice[] = []
  for (const version of ['v1', 'v2']) {
    const strategy = new FlowTagGrpcTransport({ package: 'inventory', protoPath, url: '127.0.0.1:0', flowtag: { nacos, registration: { service: 'inventory-service', version, drainMs: 300 } } })
    const app = await NestFactory.createMicroservice(inventoryModule(version), { strategy, logger: false, abortOnError: false })
    await app.listen()
    services.push(app)
    t.ok(strategy.flowTagServer?.port, `${version} bound a port`)
    t.equal(strategy.unwrap<{ constructor: { name: string } }>().constructor.name, 'Server', 'unwrap() is the grpc-js server')
  }
  t.teardown(async () => { for (const s of services) await s.close() })
  await waitFor('both inventory lanes in Nacos', async () => (await admin.naming.instances('inventory-service')).length === 2)
  t.match(await admin.naming.instances('inventory-service'), [{ metadata: { protocol: 'grpc' } }, { metadata: { protocol: 'grpc' } }])

  class EdgeController {
    readonly client: ClientGrpc
    inventory!: Inventory
    constructor (client: ClientGrpc) {
      this.client = client
    }

    onModuleInit () {
      this.inventory = this.client.getService<Inventory>('Inventory')
    }

    async check (lane: string | undefined) {
      return { edge: lane ?? null, upstream: await lastValueFrom(this.inventory.check({ sku: 'a-1' })) }
    }
  }
  Controller()(EdgeController)
  Inject('INVENTORY')(EdgeController, undefined, 0)
  method(EdgeController, 'check', Get('check'))
  params(EdgeController, 'check', [0, Lane()])
  class EdgeModule {}
  Module({
    imports: [
      FlowTagModule.forRoot({ service: 'gateway', mode: 'edge', nacos, rules: RULES, registration: false, cacheDir: false }),
      FlowTagGrpcClientsModule.register([{ name: 'INVENTORY', options: { package: 'inventory', protoPath, url: 'nacos:///inventory-service' } }], { maxRetries: 1 })
    ],
    controllers: [EdgeController]
  })(EdgeModule)
  const edge = await startApp(EdgeModule, 'fastify')
  t.teardown(() => edge.app.close())
  t.ok(edge.app.get(FlowTagGrpc) instanceof FlowTagGrpc, 'FlowTagGrpc is injectable')
  t.equal(edge.app.get(FlowTagService).rules?.version, 1)

  const tester = await (await fetch(`${edge.url}/check`, { headers: { 'x-tester': 'true' } })).json()
  t.same(tester, { edge: 'v2', upstream: { servedBy: 'v2', lane: 'v2', inProvider: 'v2', sku: 'a-1' } }, 'a tester\'s call goes to inventory v2, and runs in v2 there')
  const plain = await (await fetch(`${edge.url}/check`)).json()
  t.same(plain, { edge: 'v1', upstream: { servedBy: 'v1', lane: 'v1', inProvider: 'v1', sku: 'a-1' } })

  // closing a microservice deregisters it first; its lane's calls fall back to stable
  await services.pop()!.close()
  await waitFor('v2 deregistered', async () => (await admin.naming.instances('inventory-service')).length === 1)
  await waitFor('v2 calls fall back to v1', async () => ((await (await fetch(`${edge.url}/check`, { headers: { 'x-tester': 'true' } })).json()) as { upstream: CheckReply }).upstream.servedBy === 'v1')
  t.pass('after v2 left, a tester\'s call falls back to the stable lane')
})

t.test('FlowTagGrpcTransport: bad options', async (t) => {
  t.throws(() => new FlowTagGrpcTransport({ package: 'inventory', protoPath } as never), { code: 'FLOWTAG_NEST_BAD_OPTION', message: /"flowtag"/ })
  const strategy = new FlowTagGrpcTransport({ package: 'inventory', protoPath, url: '127.0.0.1:0', flowtag: { registration: { service: 'x' } } })
  class Empty {}
  Module({})(Empty)
  const app = await NestFactory.createMicroservice(Empty, { strategy, logger: false, abortOnError: false })
  await t.rejects(app.listen(), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"nacos": nacos and registration go together/ })
  await app.close()
})

t.test('FlowTagGrpcTransport: a NacosClient given is left open; Nest\'s server options reach grpc-js', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const nacos = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false, ...fastClient })
  t.teardown(() => nacos.close())
  const strategy = new FlowTagGrpcTransport({
    package: 'inventory',
    protoPath,
    url: '127.0.0.1:0',
    maxSendMessageLength: 1024,
    maxReceiveMessageLength: 2048,
    maxMetadataSize: 4096,
    channelOptions: { 'grpc.keepalive_time_ms': 60_000 },
    flowtag: { nacos, registration: { service: 'sized', version: 'v1' } }
  })
  const app = await NestFactory.createMicroservice(inventoryModule('v1'), { strategy, logger: false, abortOnError: false })
  await app.listen()
  const options = (strategy.unwrap<{ options: Record<string, unknown> }>()).options
  t.match(options, { 'grpc.max_send_message_length': 1024, 'grpc.max_receive_message_length': 2048, 'grpc.max_metadata_size': 4096, 'grpc.keepalive_time_ms': 60_000 })
  await waitFor('registered', async () => (await nacos.naming.instances('sized')).length === 1)
  await app.close()
  await waitFor('deregistered on close, through the client given, which stays open', async () => (await nacos.naming.instances('sized')).length === 0)
  t.pass('deregistered through the NacosClient given; it is still open')
  t.throws(() => new FlowTagGrpcTransport(undefined as never), { code: 'FLOWTAG_NEST_BAD_OPTION' })
})
