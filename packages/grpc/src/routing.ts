// FlowTagGrpc: the client side in one object. It validates the options once, registers the
// `nacos` resolver and the `flowtag_lanes` balancer with @grpc/grpc-js (both global registries,
// registered once per process), and hands out the client options a channel needs.
import type { ChannelOptions, Interceptor } from '@grpc/grpc-js'
import { flowInterceptor } from './client-interceptor.ts'
import { parseGrpcOptions, type FlowTagGrpcOptions, type ResolvedGrpcOptions } from './options.ts'
import { registerBalancer } from './balancer.ts'
import { registerResolver } from './resolver.ts'
import { ROUTING_OPTION } from './keys.ts'
import { addRouting, removeRouting, type RoutingEntry } from './registry.ts'

let nextId = 0

/** What `clientOptions()` returns: pass it as the third argument of a generated client's constructor. */
export interface FlowTagClientOptions extends ChannelOptions {
  interceptors: Interceptor[]
}

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
  #closed = false

  constructor (options: FlowTagGrpcOptions) {
    this.options = parseGrpcOptions(options)
    registerResolver()
    registerBalancer()
    this.id = `flowtag-${process.pid}-${nextId++}`
    this.#interceptor = flowInterceptor(this.options)
    addRouting(this)
  }

  /**
   * Options for a client or channel: the flow interceptor (tag, baggage, retry on another
   * instance) and the id that ties `nacos:` targets to this object. Extra channel options merge in.
   */
  clientOptions (extra: ChannelOptions = {}): FlowTagClientOptions {
    const interceptors = Array.isArray(extra.interceptors) ? [this.#interceptor, ...(extra.interceptors as Interceptor[])] : [this.#interceptor]
    return { ...extra, interceptors, [ROUTING_OPTION]: this.id }
  }

  /** The interceptor alone, for clients that target fixed addresses but should carry the flow. */
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
