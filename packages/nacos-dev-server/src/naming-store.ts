import { EventEmitter } from 'node:events'
import type { ResolvedOptions } from './options.ts'

export const DEFAULT_GROUP = 'DEFAULT_GROUP'
export const DEFAULT_CLUSTER = 'DEFAULT'
export const DEFAULT_NAMESPACE = 'public'

// Nacos's PreservedMetadataKeys: per-instance health timings in ms, as strings.
const BEAT_INTERVAL = 'preserved.heart.beat.interval'
const BEAT_TIMEOUT = 'preserved.heart.beat.timeout'
const DELETE_TIMEOUT = 'preserved.ip.delete.timeout'

export interface StoredInstance {
  ip: string
  port: number
  clusterName: string
  weight: number
  healthy: boolean
  enabled: boolean
  ephemeral: boolean
  metadata: Record<string, string>
  /** Grouped name, `group@@service`. */
  serviceName: string
  lastBeat: number
}

export interface Service {
  namespaceId: string
  /** Grouped name, `group@@service`. */
  name: string
  groupName: string
  instances: Map<string, StoredInstance>
  /** When the last instance left; Nacos cleans empty services up after about a minute. */
  emptySince?: number
}

const EMPTY_SERVICE_TTL_MS = 60_000

export interface HostView {
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
  instanceHeartBeatInterval: number
  instanceHeartBeatTimeOut: number
  ipDeleteTimeout: number
  instanceIdGenerator: 'simple'
}

export type InstanceInput = Omit<StoredInstance, 'lastBeat' | 'serviceName'>

export const groupedName = (group: string, service: string) => `${group}@@${service}`
export const instanceId = (i: Pick<StoredInstance, 'ip' | 'port' | 'clusterName' | 'serviceName'>) =>
  `${i.ip}#${i.port}#${i.clusterName}#${i.serviceName}`
const instanceKey = (ip: string, port: number, cluster: string) => `${ip}#${port}#${cluster}`

/**
 * Services and instances per namespace, with Nacos's ephemeral health: a periodic check marks an
 * instance unhealthy past its beat timeout and removes it past its delete timeout.
 * Emits 'change' (namespaceId, groupedName) after anything a subscriber would see changes.
 */
export class NamingStore extends EventEmitter<{ change: [string, string] }> {
  readonly #namespaces = new Map<string, Map<string, Service>>()
  readonly #opts: ResolvedOptions['heartbeat']
  readonly #timer: NodeJS.Timeout

  constructor (opts: ResolvedOptions['heartbeat']) {
    super()
    this.#opts = opts
    this.#timer = setInterval(() => this.checkHealth(Date.now()), opts.checkIntervalMs).unref()
  }

  close (): void {
    clearInterval(this.#timer)
  }

  service (namespaceId: string, name: string): Service | undefined {
    return this.#namespaces.get(namespaceId)?.get(name)
  }

  services (namespaceId: string): Service[] {
    return [...(this.#namespaces.get(namespaceId)?.values() ?? [])]
  }

  namespaces (): string[] {
    return [...this.#namespaces.keys()]
  }

  register (namespaceId: string, name: string, input: InstanceInput): void {
    let services = this.#namespaces.get(namespaceId)
    if (services === undefined) this.#namespaces.set(namespaceId, (services = new Map()))
    let service = services.get(name)
    if (service === undefined) {
      service = { namespaceId, name, groupName: name.slice(0, name.indexOf('@@')), instances: new Map() }
      services.set(name, service)
    }
    delete service.emptySince
    // Re-registering the same ip:port:cluster overwrites it, as Nacos does.
    service.instances.set(instanceKey(input.ip, input.port, input.clusterName), {
      ...input,
      serviceName: name,
      lastBeat: Date.now()
    })
    this.emit('change', namespaceId, name)
  }

  find (namespaceId: string, name: string, ip: string, port: number, cluster: string): StoredInstance | undefined {
    return this.service(namespaceId, name)?.instances.get(instanceKey(ip, port, cluster))
  }

  deregister (namespaceId: string, name: string, ip: string, port: number, cluster: string): boolean {
    const service = this.service(namespaceId, name)
    if (service === undefined || !service.instances.delete(instanceKey(ip, port, cluster))) return false
    this.#dropIfEmpty(service)
    this.emit('change', namespaceId, name)
    return true
  }

  update (namespaceId: string, name: string, ip: string, port: number, cluster: string, patch: Partial<StoredInstance>): boolean {
    const instance = this.find(namespaceId, name, ip, port, cluster)
    if (instance === undefined) return false
    Object.assign(instance, patch)
    this.emit('change', namespaceId, name)
    return true
  }

  /** A beat refreshes the instance and revives it at once when it was unhealthy. */
  beat (instance: StoredInstance, namespaceId: string): void {
    instance.lastBeat = Date.now()
    if (!instance.healthy) {
      instance.healthy = true
      this.emit('change', namespaceId, instance.serviceName)
    }
  }

  beatInterval (instance: StoredInstance | undefined): number {
    return metaMs(instance, BEAT_INTERVAL) ?? this.#opts.intervalMs
  }

  view (i: StoredInstance): HostView {
    return {
      instanceId: instanceId(i),
      ip: i.ip,
      port: i.port,
      weight: i.weight,
      healthy: i.healthy,
      enabled: i.enabled,
      ephemeral: i.ephemeral,
      clusterName: i.clusterName,
      serviceName: i.serviceName,
      metadata: i.metadata,
      instanceHeartBeatInterval: this.beatInterval(i),
      instanceHeartBeatTimeOut: metaMs(i, BEAT_TIMEOUT) ?? this.#opts.timeoutMs,
      ipDeleteTimeout: metaMs(i, DELETE_TIMEOUT) ?? this.#opts.deleteTimeoutMs,
      instanceIdGenerator: 'simple'
    }
  }

  /** Listed hosts: never disabled ones; optionally only healthy ones and only some clusters. */
  hosts (namespaceId: string, name: string, clusters: string[], healthyOnly: boolean): HostView[] {
    const out: HostView[] = []
    for (const i of this.service(namespaceId, name)?.instances.values() ?? []) {
      if (!i.enabled || (healthyOnly && !i.healthy)) continue
      if (clusters.length > 0 && !clusters.includes(i.clusterName)) continue
      out.push(this.view(i))
    }
    return out
  }

  checkHealth (now: number): void {
    for (const [namespaceId, services] of this.#namespaces) {
      for (const service of services.values()) {
        if (service.emptySince !== undefined && now - service.emptySince > EMPTY_SERVICE_TTL_MS) services.delete(service.name)
        let changed = false
        for (const [key, i] of service.instances) {
          if (!i.ephemeral) continue
          const silent = now - i.lastBeat
          if (silent > (metaMs(i, DELETE_TIMEOUT) ?? this.#opts.deleteTimeoutMs)) {
            service.instances.delete(key)
            changed = true
          } else if (i.healthy && silent > (metaMs(i, BEAT_TIMEOUT) ?? this.#opts.timeoutMs)) {
            i.healthy = false
            changed = true
          }
        }
        if (changed) {
          this.#dropIfEmpty(service)
          this.emit('change', service.namespaceId, service.name)
        }
      }
      if (services.size === 0) this.#namespaces.delete(namespaceId)
    }
  }

  counts (): { services: number; instances: number } {
    let services = 0
    let instances = 0
    for (const ns of this.#namespaces.values()) {
      services += ns.size
      for (const s of ns.values()) instances += s.instances.size
    }
    return { services, instances }
  }

  #dropIfEmpty (service: Service): void {
    if (service.instances.size === 0) service.emptySince ??= Date.now()
  }
}

function metaMs (i: StoredInstance | undefined, key: string): number | undefined {
  const raw = i?.metadata[key]
  if (raw === undefined) return undefined
  const n = Number(raw)
  return Number.isFinite(n) && n > 0 ? n : undefined
}

/** Nacos's checkInstanceIsLegal: timeouts below the beat interval are refused. */
export function checkTimings (metadata: Record<string, string>): string | undefined {
  const interval = Number(metadata[BEAT_INTERVAL] ?? 5000)
  for (const key of [BEAT_TIMEOUT, DELETE_TIMEOUT]) {
    const v = metadata[key]
    if (v !== undefined && !(Number(v) >= interval)) {
      return 'Instance \'heart beat timeout\' and \'ip delete timeout\' must grater than \'heart beat interval\''
    }
  }
  return undefined
}
