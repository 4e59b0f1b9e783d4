// The Discovery contract (../shared/DESIGN.md): what routing needs from a registry.
// The Nacos naming client implements it; StaticDiscovery serves tests and fixed topologies.

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

export interface ServiceChange {
  service: string
  /** The full current list after the change. */
  instances: Instance[]
  added: Instance[]
  removed: Instance[]
  changed: Instance[]
}

export type ServiceListener = (change: ServiceChange) => void

export interface Discovery {
  /** Current instances of a service from the local cache; the first call loads and starts watching it. */
  instances(service: string): Promise<Instance[]>
  /** Called on every change of the service's list; returns the unsubscribe function. */
  subscribe(service: string, listener: ServiceListener): () => void
  close(): Promise<void>
}

/** Identity of an instance within a service: what Nacos keys instances by. */
export function instanceKey (i: Pick<Instance, 'ip' | 'port' | 'clusterName'>): string {
  return `${i.ip}#${i.port}#${i.clusterName}`
}

/** Diff two lists of one service by instance identity. */
export function diffInstances (service: string, before: Instance[], after: Instance[]): ServiceChange {
  // One key per instance and no closures: this runs on every push of lists of thousands.
  const old = new Map<string, Instance>()
  for (const i of before) old.set(instanceKey(i), i)
  const added: Instance[] = []
  const changed: Instance[] = []
  for (const i of after) {
    const key = instanceKey(i)
    const prev = old.get(key)
    if (prev === undefined) added.push(i)
    else {
      old.delete(key)
      if (!sameInstance(prev, i)) changed.push(i)
    }
  }
  return { service, instances: after, added, removed: [...old.values()], changed }
}

function sameInstance (a: Instance, b: Instance): boolean {
  if (a.weight !== b.weight || a.healthy !== b.healthy || a.enabled !== b.enabled) return false
  let n = 0
  for (const k in a.metadata) {
    if (a.metadata[k] !== b.metadata[k] || !Object.hasOwn(b.metadata, k)) return false
    n++
  }
  for (const _ in b.metadata) if (--n < 0) return false
  return n === 0
}
