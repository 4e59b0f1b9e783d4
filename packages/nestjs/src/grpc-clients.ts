// Nest gRPC clients (ClientGrpc) in lanes: `nacos:///<service>` targets resolved from the app's
// Nacos discovery, each call sent to an instance of its flow's lane (@flowtag/grpc's FlowTagGrpc,
// with the lanes of the RuleSet the app's FlowTagService applies).
import { FlowTagGrpc, type FlowTagGrpcOptions } from '@flowtag/grpc'
import { serviceLanes } from '@flowtag/rules'
import { FlowTagService } from '@flowtag/service'
import { Module, type DynamicModule, type Provider } from '@nestjs/common'
import { ClientGrpcProxy, type GrpcOptions } from '@nestjs/microservices'

export interface FlowTagGrpcClient {
  /** The injection token of the `ClientGrpc` (`@Inject('INVENTORY') client: ClientGrpc`). */
  name: string | symbol
  /** Nest's gRPC client options; `url` is `nacos:///<service>` (or `nacos:///<group>@@<service>`). */
  options: GrpcOptions['options']
}

/** FlowTagGrpc's options besides what the app's FlowTagService gives (discovery, lanes). */
export type FlowTagGrpcClientsOptions = Omit<FlowTagGrpcOptions, 'discovery' | 'lanes'>

const CLIENTS = Symbol.for('@flowtag/nestjs:grpc-clients')

/**
 * ```ts
 * FlowTagGrpcClientsModule.register([{ name: 'INVENTORY', options: { package: 'inventory', protoPath, url: 'nacos:///inventory-service' } }])
 * ```
 * Needs FlowTagModule (its FlowTagService). Injectable: each client by its name, and `FlowTagGrpc`.
 * @throws {FlowTagError} `FLOWTAG_GRPC_BAD_OPTION` naming the field of `grpc`, when Nest creates it.
 */
export class FlowTagGrpcClientsModule {
  static register (clients: FlowTagGrpcClient[], grpc: FlowTagGrpcClientsOptions = {}): DynamicModule {
    const providers: Provider[] = [
      {
        provide: FlowTagGrpc,
        useFactory: (service: FlowTagService) => new FlowTagGrpc({ ...grpc, discovery: service.discovery, lanes: (name) => serviceLanes(service.rules?.compiled, name) }),
        inject: [FlowTagService]
      },
      ...clients.map((c): Provider => ({
        provide: c.name,
        useFactory: (lanes: FlowTagGrpc) => new ClientGrpcProxy({ ...c.options, channelOptions: { ...c.options.channelOptions, ...lanes.clientOptions() } }),
        inject: [FlowTagGrpc]
      })),
      {
        // On shutdown: the clients' channels first, then the FlowTagGrpc they resolve through.
        provide: CLIENTS,
        useFactory: (lanes: FlowTagGrpc, ...proxies: ClientGrpcProxy[]) => ({
          onApplicationShutdown () {
            for (const p of proxies) p.close()
            lanes.close()
          }
        }),
        inject: [FlowTagGrpc, ...clients.map((c) => c.name)]
      }
    ]
    return { module: FlowTagGrpcClientsModule, providers, exports: [FlowTagGrpc, ...clients.map((c) => c.name)] }
  }
}
Module({})(FlowTagGrpcClientsModule)
