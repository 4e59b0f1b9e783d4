// A Nest app as a user writes it: decorator syntax, constructor injection by type
// (emitDecoratorMetadata), compiled by tsc (to ESM or, in a CommonJS project, to require()s).
// `node dist/main.js <edge|catalog|inventory> <express|fastify|grpc> [lane]`: inventory is a Nest gRPC
// microservice (@flowtag/nestjs/grpc), the edge calls it through a ClientGrpc resolving
// nacos:///inventory; catalog has a @nestjs/terminus health controller (@flowtag/nestjs/terminus).
import 'reflect-metadata'
import { dirname, join } from 'node:path'
import { Controller, Get, Headers, Inject, Injectable, Module, type OnModuleInit } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { GrpcMethod, Payload, type ClientGrpc } from '@nestjs/microservices'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { HealthCheck, HealthCheckService } from '@nestjs/terminus'
import { lastValueFrom, type Observable } from 'rxjs'
import { FlowTagHttpClient, FlowTagModule, FlowTagService, Lane, LaneContext, type FlowTagModuleOptions } from '@flowtag/nestjs'
import { FlowTagGrpcClientsModule, FlowTagGrpcTransport } from '@flowtag/nestjs/grpc'
import { FlowTagHealthIndicator, FlowTagHealthModule } from '@flowtag/nestjs/terminus'

const [role = 'catalog', platform = 'express', lane = 'v1'] = process.argv.slice(2)
const nacos = { serverAddr: process.env.NACOS_SERVER_ADDR ?? '127.0.0.1:8848' }
// Next to dist/: the same path in an ES module and in CommonJS.
const protoPath = join(dirname(process.argv[1]!), '..', 'inventory.proto')

interface StockReply { sku: string, servedBy: string, lane: string }
interface Inventory { check(request: { sku: string }): Observable<StockReply> }

@Controller()
class InventoryController {
  @GrpcMethod('Inventory', 'Check')
  check (@Payload() request: { sku: string }, @Lane() tag: string | undefined): StockReply {
    return { sku: request.sku, servedBy: lane, lane: tag ?? '' }
  }
}

@Injectable()
class WhoAmI {
  constructor (private readonly lanes: LaneContext) {}

  async lane (): Promise<string | null> {
    await new Promise((resolve) => setTimeout(resolve, 1))
    return this.lanes.current ?? null
  }
}

@Controller()
class CatalogController {
  constructor (private readonly who: WhoAmI) {}

  @Get('item')
  async item (@Lane() tag: string | undefined, @Headers('x-flow-tag') header?: string) {
    return { servedBy: lane, tag: tag ?? null, inProvider: await this.who.lane(), header: header ?? null }
  }
}

@Controller()
class EdgeController {
  constructor (private readonly http: FlowTagHttpClient, private readonly flowtag: FlowTagService) {}

  @Get('call')
  async call (@Lane() tag: string | undefined) {
    const res = await this.http.fetch('http://catalog/item')
    return { edgeLane: tag ?? null, rulesVersion: this.flowtag.rules?.version ?? null, upstream: await res.json() }
  }
}

@Controller()
class StockController implements OnModuleInit {
  inventory!: Inventory
  constructor (@Inject('INVENTORY') private readonly client: ClientGrpc) {}

  onModuleInit () {
    this.inventory = this.client.getService<Inventory>('Inventory')
  }

  @Get('stock')
  async stock (@Lane() tag: string | undefined) {
    return { edgeLane: tag ?? null, upstream: await lastValueFrom(this.inventory.check({ sku: 'a-1' })) }
  }
}

@Controller('healthz')
class HealthController {
  constructor (private readonly health: HealthCheckService, private readonly flowtag: FlowTagHealthIndicator) {}

  @Get()
  @HealthCheck()
  check () {
    return this.health.check([() => this.flowtag.isReady()])
  }
}

const options: FlowTagModuleOptions = role === 'edge'
  ? { service: 'gateway', mode: 'edge', nacos, rules: { dataId: 'flowtag-rules.json' }, registration: false, cacheDir: false }
  : role === 'inventory'
    ? { service: 'inventory', version: lane, nacos, registration: false, cacheDir: false } // FlowTagGrpcTransport registers
    : { service: 'catalog', version: lane, nacos, registration: { drainMs: 200 }, cacheDir: false }

@Module({
  imports: [
    FlowTagModule.forRoot(options),
    ...(role === 'edge' ? [FlowTagGrpcClientsModule.register([{ name: 'INVENTORY', options: { package: 'inventory', protoPath, url: 'nacos:///inventory' } }])] : []),
    ...(role === 'catalog' ? [FlowTagHealthModule] : [])
  ],
  controllers: role === 'edge' ? [EdgeController, StockController] : role === 'inventory' ? [InventoryController] : [CatalogController, HealthController],
  providers: [WhoAmI]
})
class AppModule {}

async function grpcMicroservice (): Promise<void> {
  const strategy = new FlowTagGrpcTransport({
    package: 'inventory',
    protoPath,
    url: '127.0.0.1:0',
    flowtag: { nacos, registration: { service: 'inventory', version: lane, drainMs: 200 } }
  })
  const app = await NestFactory.createMicroservice(AppModule, { strategy, logger: ['error', 'warn'] })
  app.enableShutdownHooks()
  await app.listen()
  process.send?.({ port: strategy.flowTagServer?.port })
}

// No top-level await: the same file compiles to ESM (Nest 12 project) and CommonJS (Nest 11 project).
async function bootstrap (): Promise<void> {
  if (role === 'inventory') return grpcMicroservice()
  const app = await NestFactory.create(AppModule, platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(), { logger: ['error', 'warn'] })
  app.enableShutdownHooks()
  await app.listen(0, '127.0.0.1')
  process.send?.({ port: (app.getHttpServer().address() as { port: number }).port })
}
void bootstrap()
