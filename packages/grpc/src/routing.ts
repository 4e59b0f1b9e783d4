// FlowTagGrpc: the client side in one object. It validates the options once, registers the
// `nacos` resolver and the `flowtag_lanes` balancer with @grpc/grpc-js (both global registries,
// registered once per process), and hands out the client options a channel needs.
import type { ClientOptions, Interceptor } from '@grpc/grpc-js'
import { flowInterceptor } from './client-interceptor.ts'
import { FlowChannel, flowCallConfig, flowChannelFactory, type FlowCallConfig } from './flow-channel.ts'
import { parseGrpcOptions, type FlowTagGrpcOptions, type ResolvedGrpcOptions } from './options.ts'
import { registerBalancer } from './balancer.ts'
import { registerResolver } from './resolver.ts'
import { ROUTING_OPTION } from './keys.ts'
import { addRouting, removeRouting, type RoutingEntry } from './registry.ts'

let nextId = 0

/** What `clientOptions()` returns: pass it as the third argument of a generated client's constructor. */
export type FlowTagClientOptions = ClientOptions

/**
 * Lanes for gRPC clients: `nacos:///<service>` targets resolved through `discovery`, each call
 * sent to an instance of its lane (from the flow, carried in `x-flow-tag`), by weight, with the
 * same fallback, strictness and error codes as @flowtag/outbound's HTTP dispatcher.
 *
 * ```ts
 * const lanes = new FlowTagGrpc({ discovery: nacos.naming, stableLane: 'v1', lanes: (s) => rules.current?.serviceLanes(s) })
 * const inventory = new InventoryClient('nacos:///inventory-service', credentials.createInsecure(), lanes.clientOptions())
 * ```
 * @throws {GrpcError} `FLOWTAG_GRPC_BAD_OPTION` naming the bad field.
 */
export class FlowTagGrpc implements RoutingEntry {
  readonly id: string
  readonly options: ResolvedGrpcOptions
  readonly #interceptor: Interceptor
  readonly #calls: FlowCallConfig
  #closed = false

  constructor (options: FlowTagGrpcOptions) {
    this.options = parseGrpcOptions(options)
    registerResolver()
    registerBalancer()
    this.id = `flowtag-${process.pid}-${nextId++}`
    this.#interceptor = flowInterceptor(this.options)
    this.#calls = flowCallConfig(this.options)
    addRouting(this)
  }

  /**
   * Options for a client: the id that ties `nacos:` targets to this object, and a channel whose
   * calls carry the caller's flow (`x-flow-tag`, `baggage`) and retry on another instance (a
   * `channelFactoryOverride` wrapping grpc-js's channel; no interceptor, so no per-call
   * interceptor chain). `extra` client options merge in: interceptors run above that channel, a
   * `channelFactoryOverride` or `channelOverride` of `extra` is wrapped.
   */
  clientOptions (extra: ClientOptions = {}): FlowTagClientOptions {
    const options: FlowTagClientOptions = { ...extra, [ROUTING_OPTION]: this.id }
    if (extra.channelOverride !== undefined) options.channelOverride = new FlowChannel(extra.channelOverride, this.#calls)
    else options.channelFactoryOverride = flowChannelFactory(this.#calls, extra.channelFactoryOverride)
    return options
  }

  /** The flow interceptor alone (writes the flow, no retries), for clients of fixed addresses that should carry the flow. */
  get interceptor (): Interceptor {
    return this.#interceptor
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Forget this object: channels made with it can no longer resolve (close them first). Idempotent. */
  close (): void {
    this.#closed = true
    removeRouting(this.id)
  }
}
