// inventory-service's Nest module: FlowTagModule (service mode: the lane comes with each call)
// and the gRPC controller. Decorators are applied as functions: Node's type stripping has no
// decorator syntax (a compiled Nest app writes `@Controller()`, `@GrpcMethod(...)`, `@Lane()`).
import { FlowTagModule, FlowTagService, Lane, type FlowTagModuleOptions } from '@flowtag/nestjs'
import { InventoryService, nacosOptions, trustAndCache, type ServiceEnv, type StockReply, type StockRequest } from '@flowtag/demo-kit'
import { Controller, Inject, Module, type DynamicModule } from '@nestjs/common'
import { GrpcMethod, Payload } from '@nestjs/microservices'

/** The gRPC contract as Nest's transport loads it: package `flowtag.demo`, service `Inventory` (JSON codec, no .proto). */
export const packageDefinition = { 'flowtag.demo.Inventory': InventoryService }

export class InventoryController {
  readonly version: string
  constructor (flowtag: FlowTagService) {
    this.version = flowtag.version ?? 'v1'
  }

  /** `Check`: in stock, and which instance served it in which lane (the call's, from its metadata). */
  check (request: StockRequest, lane: string | undefined): StockReply {
    return { sku: request.sku, inStock: true, hops: [{ service: 'inventory-service', version: this.version, lane: lane ?? null }] }
  }
}
Controller()(InventoryController)
Inject(FlowTagService)(InventoryController, undefined, 0)
GrpcMethod('Inventory', 'check')(InventoryController.prototype, 'check', Object.getOwnPropertyDescriptor(InventoryController.prototype, 'check')!)
Payload()(InventoryController.prototype, 'check', 0)
Lane()(InventoryController.prototype, 'check', 1)

export class InventoryModule {
  /**
   * The app in lanes. Nothing registers through the module (`registration: false`): the
   * instance callers want is the gRPC server, which FlowTagGrpcTransport registers (main.ts).
   * `/ready` is main.ts's too: it reports the gRPC server's registration.
   */
  static forRoot (env: ServiceEnv, logger: FlowTagModuleOptions['logger']): DynamicModule {
    return {
      module: InventoryModule,
      imports: [FlowTagModule.forRoot({
        service: 'inventory-service',
        version: env.SERVICE_VERSION,
        nacos: nacosOptions(env),
        registration: false,
        readyPath: false,
        ...(logger === undefined ? {} : { logger }),
        ...trustAndCache(env, 'inventory-service')
      })],
      controllers: [InventoryController]
    }
  }
}
Module({})(InventoryModule)
