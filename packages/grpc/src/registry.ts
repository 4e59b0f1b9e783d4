// FlowTagGrpc objects by id: channel options carry the id (a string, so options stay plain
// data), the resolver and the balancer look the object up here.
import type { ChannelOptions } from '@grpc/grpc-js'
import type { Counter } from '@opentelemetry/api'
import type { RetryBudgets, WarmupPolicy } from '@flowtag/outbound/lanes'
import type { ResolvedGrpcOptions } from './options.ts'
import { ROUTING_OPTION } from './keys.ts'

export interface RoutingEntry {
  readonly id: string
  readonly options: ResolvedGrpcOptions
  readonly closed: boolean
  /** A service's warm-up policy and retry budgets (shared by every channel to it). */
  policies(service: string): { warmup: WarmupPolicy | false; budgets: RetryBudgets | null }
  /** `flowtag.grpc.retries_refused`: retries not sent because their lane's budget was spent. */
  readonly retriesRefused: Counter
}

const routings = new Map<string, RoutingEntry>()

export function addRouting (entry: RoutingEntry): void {
  routings.set(entry.id, entry)
}

export function removeRouting (id: string): void {
  routings.delete(id)
}

/** The FlowTagGrpc a channel was made with (by the id in its options). */
export function routingOf (options: ChannelOptions): RoutingEntry | undefined {
  const id = options[ROUTING_OPTION]
  return typeof id === 'string' ? routings.get(id) : undefined
}
