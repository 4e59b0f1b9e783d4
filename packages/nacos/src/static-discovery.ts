import { diffInstances, type NamingDiscovery, type Instance, type ServiceListener } from './discovery.ts'

export type StaticInstance = Pick<Instance, 'ip' | 'port'> & Partial<Instance>

/** A NamingDiscovery over lists held in memory; `set()` replaces a service's list and notifies subscribers. */
export class StaticDiscovery implements NamingDiscovery {
  #lists = new Map<string, Instance[]>()
  #listeners = new Map<string, Set<ServiceListener>>()

  constructor (services: Record<string, StaticInstance[]> = {}) {
    for (const [service, list] of Object.entries(services)) this.#lists.set(service, list.map((i) => complete(service, i)))
  }

  async instances (service: string): Promise<Instance[]> {
    return this.#lists.get(service) ?? []
  }

  subscribe (service: string, listener: ServiceListener): () => void {
    let set = this.#listeners.get(service)
    if (set === undefined) this.#listeners.set(service, (set = new Set()))
    set.add(listener)
    return () => set.delete(listener)
  }

  set (service: string, list: StaticInstance[]): void {
    const next = list.map((i) => complete(service, i))
    const change = diffInstances(service, this.#lists.get(service) ?? [], next)
    this.#lists.set(service, next)
    for (const listener of this.#listeners.get(service) ?? []) listener(change)
  }

  async close (): Promise<void> {
    this.#listeners.clear()
  }
}

function complete (service: string, i: StaticInstance): Instance {
  const clusterName = i.clusterName ?? 'DEFAULT'
  return {
    instanceId: i.instanceId ?? `${i.ip}#${i.port}#${clusterName}#DEFAULT_GROUP@@${service}`,
    ip: i.ip,
    port: i.port,
    weight: i.weight ?? 1,
    healthy: i.healthy ?? true,
    enabled: i.enabled ?? true,
    ephemeral: i.ephemeral ?? true,
    clusterName,
    serviceName: i.serviceName ?? service,
    metadata: i.metadata ?? {}
  }
}
