// What the Nacos naming client offers routing: NamingDiscovery, a superset of the one routing
// contract, @flowtag/outbound's Discovery (../shared/DESIGN.md). StaticDiscovery serves tests and
// fixed topologies.

export interface Instance {
  instanceId: string
  ip: string
  port: number
  weight: number
  healthy: boolean
  enabled: boolean
  ephemeral: boolean
  clusterName: string
  serviceName: string
  metadata: Record<string, string>
}

/**
 * One change of a service's list. `added`, `removed` (the old objects) and `changed` (the new
 * ones) are relative to the list of the listener's previous change, or to the list
 * `instances()` returned; @flowtag/outbound applies a small change from them in O(changed).
 */
export interface ServiceChange {
  service: string
  /** The full current list after the change. */
  instances: Instance[]
  added: Instance[]
  removed: Instance[]
  changed: Instance[]
}

export type ServiceListener = (change: ServiceChange) => void

/**
 * The naming side of a registry: @flowtag/outbound's `Discovery` (the routing contract, which
 * this satisfies) plus `close()`, over Nacos's full `Instance`. Implemented by `client.naming`
 * and `StaticDiscovery`.
 */
export interface NamingDiscovery {
  /** Current instances of a service from the local cache; the first call loads and starts watching it. */
  instances(service: string): Promise<Instance[]>
  /** Called on every change of the service's list; returns the unsubscribe function. */
  subscribe(service: string, listener: ServiceListener): () => void
  close(): Promise<void>
}

/**
 * @deprecated since 0.3: the routing contract is `Discovery` of @flowtag/outbound; this package's
 * own interface is `NamingDiscovery` (the same shape). Kept as an alias for one minor version.
 */
export type Discovery = NamingDiscovery

/** Identity of an instance within a service: what Nacos keys instances by. */
export function instanceKey (i: Pick<Instance, 'ip' | 'port' | 'clusterName'>): string {
  return `${i.ip}#${i.port}#${i.clusterName}`
}

/**
 * Diff two lists of one service by instance identity. An instance is changed when any field
 * differs (weight, health, enabled, metadata, instanceId, ephemeral, serviceName). Unchanged
 * instances of `after` are replaced, in place, by their equal objects of `before`: a list held
 * across pushes keeps its objects (the new ones die young instead of being promoted by the GC
 * with every push), and `changed` holds the only new objects besides `added`.
 */
export function diffInstances (service: string, before: Instance[], after: Instance[]): ServiceChange {
  const added: Instance[] = []
  const changed: Instance[] = []
  // Pushes list a service in the same order: while the two lists line up, compare in place,
  // building no key.
  const n = Math.min(before.length, after.length)
  let k = 0
  for (; k < n; k++) {
    const prev = before[k] as Instance
    const next = after[k] as Instance
    if (prev.ip !== next.ip || prev.port !== next.port || prev.clusterName !== next.clusterName) break
    if (sameInstance(prev, next)) after[k] = prev
    else changed.push(next)
  }
  if (k === before.length && k === after.length) return { service, instances: after, added, removed: [], changed }
  // The rest by key: one per instance and no closures (lists of thousands).
  const old = new Map<string, Instance>()
  for (let j = k; j < before.length; j++) old.set(instanceKey(before[j] as Instance), before[j] as Instance)
  for (let j = k; j < after.length; j++) {
    const next = after[j] as Instance
    const key = instanceKey(next)
    const prev = old.get(key)
    if (prev === undefined) added.push(next)
    else {
      old.delete(key)
      if (sameInstance(prev, next)) after[j] = prev
      else changed.push(next)
    }
  }
  return { service, instances: after, added, removed: [...old.values()], changed }
}

function sameInstance (a: Instance, b: Instance): boolean {
  if (a.weight !== b.weight || a.healthy !== b.healthy || a.enabled !== b.enabled || a.ephemeral !== b.ephemeral) return false
  if (a.instanceId !== b.instanceId || a.serviceName !== b.serviceName) return false
  let n = 0
  for (const k in a.metadata) {
    if (a.metadata[k] !== b.metadata[k] || !Object.hasOwn(b.metadata, k)) return false
    n++
  }
  for (const _ in b.metadata) if (--n < 0) return false
  return n === 0
}
