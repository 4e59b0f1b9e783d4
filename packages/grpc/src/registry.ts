// FlowTagGrpc objects by id: channel options carry the id (a string, so options stay plain
// data), the resolver and the balancer look the object up here.
import type { ChannelOptions } from '@grpc/grpc-js'
import type { ResolvedGrpcOptions } from './options.ts'
import { ROUTING_OPTION } from './keys.ts'

export interface RoutingEntry {
  readonly id: string
  readonly options: ResolvedGrpcOptions
  readonly closed: boolean
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
