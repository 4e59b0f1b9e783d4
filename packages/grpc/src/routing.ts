// FlowTagGrpc: the client side in one object. It validates the options once, registers the
// `nacos` resolver and the `flowtag_lanes` balancer with @grpc/grpc-js (both global registries,
// registered once per process), and hands out the client options a channel needs.
import type { ClientOptions, Interceptor } from '@grpc/grpc-js'
import { metrics, type Counter } from '@opentelemetry/api'
import { policiesFor, RetryBudgets, type WarmupPolicy } from '@flowtag/outbound/lanes'
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
  readonly #policies = new Map<string, { warmup: WarmupPolicy | false; budgets: RetryBudgets | null }>()
  readonly retriesRefused: Counter
  #closed = false

  constructor (options: FlowTagGrpcOptions) {
    this.options = parseGrpcOptions(options)
    registerResolver()
    registerBalancer()
    this.id = `flowtag-${process.pid}-${nextId++}`
    this.#interceptor = flowInterceptor(this.options)
    this.#calls = flowCallConfig(this.options)
    this.retriesRefused = (this.options.meter ?? metrics.getMeter('@flowtag/grpc')).createCounter('flowtag.grpc.retries_refused', {
      description: 'Retries not sent because the retry budget of the lane was spent'
    })
    addRouting(this)
  }

  /** A service's warm-up policy and its lanes' retry budgets, shared by every channel to it. */
  policies (service: string): { warmup: WarmupPolicy | false; budgets: RetryBudgets | null } {
    let p = this.#policies.get(service)
    if (p === undefined) {
      // `group@@name` targets: the services option may name either.
      const name = Object.hasOwn(this.options.services, service) ? service : service.slice(service.indexOf('@@') + 2)
      const { warmup, retryBudget } = policiesFor(name, this.options)
      this.#policies.set(service, (p = { warmup, budgets: retryBudget === false ? null : new RetryBudgets(retryBudget) }))
    }
    return p
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
