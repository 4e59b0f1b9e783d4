// The Discovery contract as @flowtag/outbound consumes it (../shared/DESIGN.md "Contracts"):
// declared here, so any registry client (the @flowtag/nacos naming client, a static list, a
// Consul adapter) satisfies it structurally and the Nacos client need not be installed.

/** One instance of a service, as routing reads it. Extra fields are ignored. */
export interface Instance {
  ip: string
  port: number
  /** Relative weight; 0 (or not finite) takes the instance out of rotation. */
  weight: number
  healthy: boolean
  enabled: boolean
  /** Part of the instance's identity; a missing cluster counts as `DEFAULT`. */
  clusterName?: string
  /** Labels; `metadata[labelKey]` (default `version`) is the instance's lane. */
  metadata: Record<string, string>
}

/**
 * A change of one service's list. `instances` (the full list after it) is all a source must
 * give. A source that knows what changed may also give all three of `added`, `removed` and
 * `changed`, relative to the list of its previous change to this listener (or to the list
 * `instances()` returned): routing then applies a small change in O(changed) instead of
 * rebuilding the service's lanes from the full list. When given, `changed` must list every
 * instance whose `weight`, `healthy`, `enabled` or `metadata` differ (the new object, keyed by
 * {@link instanceKey}); `removed` may hold the old objects. The @flowtag/nacos naming client and
 * its StaticDiscovery give them. Inconsistent sets (an added instance already listed, a removed
 * one unknown, counts that do not add up) fall back to the full list.
 */
export interface ServiceChange {
  instances: readonly Instance[]
  added?: readonly Instance[]
  removed?: readonly Instance[]
  changed?: readonly Instance[]
}

/**
 * Where service names are resolved. `instances()` reads a local cache (the first call may load
 * and start watching); `subscribe()` reports every later change and returns its unsubscribe.
 */
export interface Discovery {
  instances(service: string): Promise<readonly Instance[]>
  subscribe(service: string, listener: (change: ServiceChange) => void): () => void
}

/** Identity of an instance within a service, as Nacos keys them: `ip#port#cluster`. */
export function instanceKey (i: Pick<Instance, 'ip' | 'port' | 'clusterName'>): string {
  return `${i.ip}#${i.port}#${i.clusterName ?? 'DEFAULT'}`
}

/** Healthy, enabled and with a positive weight: may be picked (unless ejected). */
export function eligible (i: Instance): boolean {
  return i.healthy && i.enabled && Number.isFinite(i.weight) && i.weight > 0
}

/**
 * Instance metadata saying what an instance is for, comma-separated. `consumer`: a message
 * consumer (@flowtag/mq registers these), whose port is a health or metrics port, not one that
 * takes HTTP or gRPC calls. Absent: an ordinary service instance.
 */
export const ROLE_METADATA = 'flowtag.role'
/** The role of an instance that only consumes messages. */
export const CONSUMER_ROLE = 'consumer'

/** Whether callers may send it HTTP or gRPC calls: every instance but a consumer-only one. */
export function takesCalls (i: Instance): boolean {
  const roles = i.metadata?.[ROLE_METADATA]
  if (roles === undefined || roles === '') return true
  return roles.split(',').some((r) => r.trim() !== CONSUMER_ROLE && r.trim() !== '')
}

/**
 * The instances a caller routes to: without the consumer-only ones, which are not members of
 * any lane for callers (a lane whose only instances consume messages falls back as an empty
 * lane). The same array when none is left out.
 */
export function callTargets (list: readonly Instance[]): readonly Instance[] {
  return list.every(takesCalls) ? list : list.filter(takesCalls)
}

/** The lane an instance is labelled with; unlabelled instances belong to the stable lane. */
export function laneOf (i: Instance, labelKey: string, stable: string): string {
  const v = i.metadata[labelKey]
  return v === undefined || v === '' ? stable : v
}
