// A Nest gRPC microservice in lanes: Nest's own gRPC transport (proto loading, @GrpcMethod
// routing, streaming) over @flowtag/grpc's FlowTagGrpcServer, which runs every handler in its
// call's flow, serves grpc.health.v1, registers in Nacos with the lane once bound, and on close
// deregisters, drains, then shuts down.
import { FlowTagError } from '@flowtag/errors'
import { FlowTagGrpcServer, type FlowTagGrpcServerOptions } from '@flowtag/grpc/server'
import { NacosClient, presetClientOptions, type NacosClientOptions } from '@flowtag/nacos'
import type { Server, ServerCredentials } from '@grpc/grpc-js'
import { ServerGrpc, type GrpcOptions } from '@nestjs/microservices'
import { errorCodes, PACKAGE } from './errors.ts'

export type FlowTagGrpcTransportOptions = GrpcOptions['options'] & {
  /**
   * FlowTagGrpcServer's options (`registration`: `service`, `version`, `drainMs`, ...; `flow`:
   * the trust policy; `shutdownTimeoutMs`), with `nacos` a NacosClient (left open, e.g.
   * `app.get(FlowTagService).nacos`) or the options of one (created here, closed with the server).
   * `server` is made from Nest's own options (`channelOptions`, message sizes, keepalive).
   */
  flowtag: Omit<FlowTagGrpcServerOptions, 'nacos' | 'server'> & { nacos?: NacosClient | NacosClientOptions }
}

/**
 * Nest's gRPC transport, in lanes:
 *
 * ```ts
 * app.connectMicroservice({ strategy: new FlowTagGrpcTransport({ package: 'inventory', protoPath, url: '0.0.0.0:50051', flowtag: { nacos: app.get(FlowTagService).nacos, registration: { service: 'inventory-service', version: 'v2' } } }) })
 * ```
 * @throws {FlowTagError} `FLOWTAG_NEST_BAD_OPTION` without `flowtag`; `FLOWTAG_GRPC_BAD_OPTION` (at listen) for a bad `flowtag` field.
 */
export class FlowTagGrpcTransport extends ServerGrpc {
  readonly #flowtag: FlowTagGrpcTransportOptions['flowtag']
  readonly #nest: GrpcOptions['options']
  #server: FlowTagGrpcServer | undefined
  #ownNacos: NacosClient | undefined

  constructor (options: FlowTagGrpcTransportOptions) {
    const { flowtag, ...nest } = options ?? ({} as FlowTagGrpcTransportOptions)
    if (typeof flowtag !== 'object' || flowtag === null) throw new FlowTagError(errorCodes.BAD_OPTION, `${PACKAGE}: invalid option "flowtag": expected FlowTagGrpcServer options ({ nacos, registration, ... })`)
    super(nest as GrpcOptions['options'])
    this.#flowtag = flowtag
    this.#nest = nest as GrpcOptions['options']
  }

  /** The FlowTagGrpcServer (its `server`, `health`, `ready`), once listening. */
  get flowTagServer (): FlowTagGrpcServer | undefined {
    return this.#server
  }

  /** Not bound yet: Nest adds its services first, `start()` binds and registers. */
  override async createClient (): Promise<Server> {
    const { nacos, ...rest } = this.#flowtag
    if (nacos !== undefined && !(nacos instanceof NacosClient)) {
      // Credentials from NACOS_* where the options give none; connection labels from the registration.
      const reg = rest.registration as { service?: string, version?: string, env?: string } | undefined
      this.#ownNacos = new NacosClient(presetClientOptions(nacos, { service: reg?.service, version: reg?.version, env: reg?.env }))
    }
    const server = new FlowTagGrpcServer({ ...rest, ...(nacos === undefined ? {} : { nacos: this.#ownNacos ?? nacos as NacosClient }), server: this.#serverOptions() })
    this.#server = server
    // What Nest calls on its "grpcClient": services go through the FlowTagGrpcServer, which runs
    // their handlers in their call's flow.
    return { addService: server.addService.bind(server) } as unknown as Server
  }

  override async start (callback?: () => void): Promise<void> {
    await this.bindEvents()
    const credentials = this.#nest.credentials as ServerCredentials | undefined
    await this.#server!.listen(this.url, credentials)
    callback?.()
  }

  /** Deregister, NOT_SERVING, wait `drainMs`, let calls finish, shut down; then close the Nacos client if made here. */
  override async close (): Promise<void> {
    await this.#server?.close()
    await this.#ownNacos?.close()
    this.grpcClient = null as never
  }

  override unwrap<T> (): T {
    return this.#server?.server as T
  }

  /** Nest's server options (channel options, message sizes, keepalive), as its own transport makes them. */
  #serverOptions (): Record<string, unknown> {
    const o = this.#nest
    return {
      ...o.channelOptions,
      ...(o.maxSendMessageLength === undefined ? {} : { 'grpc.max_send_message_length': o.maxSendMessageLength }),
      ...(o.maxReceiveMessageLength === undefined ? {} : { 'grpc.max_receive_message_length': o.maxReceiveMessageLength }),
      ...(o.maxMetadataSize === undefined ? {} : { 'grpc.max_metadata_size': o.maxMetadataSize }),
      ...this.getKeepaliveOptions()
    }
  }
}
