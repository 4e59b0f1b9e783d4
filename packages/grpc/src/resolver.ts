// The `nacos` name resolver: `nacos:///<service>` to the service's instances, from the
// Discovery's cache and its subscription (never a registry call per RPC). Each list goes to
// the balancer with the instances themselves (lane label, weight, health) as attributes, and
// a service config that selects the `flowtag_lanes` balancer for the channel.
import { experimental, Metadata, status, type ChannelOptions } from '@grpc/grpc-js'
import { callTargets, type Instance } from '@flowtag/outbound/lanes'
import { INSTANCES_ATTRIBUTE, LB_NAME } from './keys.ts'
import { GrpcError, errorCodes, ROUTING_ERROR_KEY } from './errors.ts'
import { routingOf } from './registry.ts'
import { parseTarget } from './target.ts'

let registered = false

export function registerResolver (): void {
  if (registered) return
  registered = true
  experimental.registerResolver('nacos', NacosResolver)
}

class NacosResolver implements experimental.Resolver {
  readonly #listener: experimental.ResolverListener
  #service = ''
  #last: readonly Instance[] | null = null
  #error: GrpcError | null = null
  #unsubscribe: (() => void) | null = null
  #destroyed = false

  constructor (target: experimental.GrpcUri, listener: experimental.ResolverListener, options: ChannelOptions) {
    this.#listener = listener
    const routing = routingOf(options)
    try {
      if (routing === undefined || routing.closed) {
        throw new GrpcError(errorCodes.NOT_CONFIGURED, '@flowtag/grpc: a nacos: target needs the channel options of FlowTagGrpc#clientOptions()')
      }
      const parsed = parseTarget(target)
      const ns = routing.options.namespace
      if (parsed.namespace !== undefined && parsed.namespace !== ns) {
        throw new GrpcError(errorCodes.BAD_TARGET, ns === undefined ? `@flowtag/grpc: target namespace "${parsed.namespace}" given, but FlowTagGrpc has no \`namespace\` option: set it to the discovery's namespace` : `@flowtag/grpc: target namespace "${parsed.namespace}" is not the discovery's ("${ns}")`)
      }
      const group = routing.options.group
      const service = group === undefined || parsed.service.includes('@@') ? parsed.service : `${group}@@${parsed.service}`
      this.#service = service
      this.#config = { loadBalancingConfig: [{ [LB_NAME]: { service, routing: routing.id } }], methodConfig: [] }
      const discovery = routing.options.discovery
      let changed = false
      this.#unsubscribe = discovery.subscribe(service, (change) => {
        changed = true
        this.#report(change.instances)
      })
      discovery.instances(service).then(
        (list) => {
          // A change that arrived while loading is newer than this list.
          if (!changed) this.#report(list)
        },
        (err: unknown) => this.#fail(status.UNAVAILABLE, `discovery of "${service}" failed: ${(err as Error)?.message ?? String(err)}`, 'FLOWTAG_OUTBOUND_DISCOVERY_FAILED')
      )
    } catch (err) {
      this.#error = err as GrpcError
      // Reported asynchronously: the channel is not ready to hear from us inside its constructor.
      queueMicrotask(() => this.#fail(status.UNAVAILABLE, (err as Error).message, (err as GrpcError).code))
    }
  }

  #config: { loadBalancingConfig: Array<Record<string, object>>; methodConfig: [] } | null = null

  /** Consumer-only instances (a health or metrics port) are never endpoints: no connection, no pick. */
  #report (listed: readonly Instance[]): void {
    if (this.#destroyed || this.#config === null) return
    const list = callTargets(listed)
    this.#last = list
    const endpoints = list.map((i) => ({ addresses: [{ host: i.ip, port: i.port }] }))
    this.#listener(
      experimental.statusOrFromValue(endpoints),
      { [INSTANCES_ATTRIBUTE]: list },
      experimental.statusOrFromValue(this.#config as never),
      `${this.#service}: ${list.length} instance(s)`
    )
  }

  #fail (code: status, details: string, flowtagCode: string): void {
    if (this.#destroyed) return
    const metadata = new Metadata()
    metadata.set(ROUTING_ERROR_KEY, flowtagCode)
    this.#listener(experimental.statusOrFromError({ code, details, metadata }), {}, null, details)
  }

  /** The channel asks again (e.g. after a failure): the cache is current, report it once more. */
  updateResolution (): void {
    if (this.#error !== null) this.#fail(status.UNAVAILABLE, this.#error.message, this.#error.code)
    else if (this.#last !== null) this.#report(this.#last)
  }

  destroy (): void {
    this.#destroyed = true
    this.#unsubscribe?.()
    this.#unsubscribe = null
  }

  static getDefaultAuthority (target: experimental.GrpcUri): string {
    const path = target.path.startsWith('/') ? target.path.slice(1) : target.path
    return path === '' ? 'nacos' : path.replace('@@', '.')
  }
}
