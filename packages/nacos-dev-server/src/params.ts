import { optional, type Call } from './http.ts'
import { DEFAULT_CLUSTER, DEFAULT_GROUP, DEFAULT_NAMESPACE } from './naming-store.ts'

/** A parameter Nacos would refuse; each API flavour turns it into its own 400 answer. */
export class BadParam extends Error {
  readonly missing: boolean
  constructor (message: string, missing = false) {
    super(message)
    this.missing = missing
  }
}

export type Flavour = 'v1' | 'v3'

export function need (call: Call, name: string, flavour: Flavour): string {
  const v = optional(call, name)
  if (v !== undefined) return v
  throw new BadParam(flavour === 'v1' ? `Param '${name}' is required.` : `Required parameter '${name}' type String is not present`, true)
}

const illegal = (name: string) => new BadParam(`Param '${name}' is illegal, illegal characters should not appear in the param.`)

export function namespaceOf (call: Call): string {
  const ns = optional(call, 'namespaceId') ?? DEFAULT_NAMESPACE
  if (ns.length > 64) throw new BadParam('Param \'namespaceId\' is illegal, the param length should not exceed 64.')
  if (!/^[\w-]+$/.test(ns)) throw illegal('namespaceId')
  return ns
}

/** The grouped service name. v1 accepts `group@@service` in serviceName; v3 takes them apart. */
export function serviceOf (call: Call, flavour: Flavour): { name: string; group: string; service: string } {
  const raw = need(call, 'serviceName', flavour)
  let group = optional(call, 'groupName') ?? DEFAULT_GROUP
  let service = raw
  const at = raw.indexOf('@@')
  if (flavour === 'v1' && at >= 0) {
    group = raw.slice(0, at)
    service = raw.slice(at + 2)
    if (group === '' || service === '' || service.includes('@@')) throw illegal('serviceName')
  } else if (at >= 0) throw illegal('serviceName')
  if (service.length > 512 || /\s/.test(service) || /[^\x20-\x7e]/.test(service)) throw illegal('serviceName')
  if (group.length > 128 || !/^[a-zA-Z0-9\-_:.]+$/.test(group)) throw illegal('groupName')
  return { name: `${group}@@${service}`, group, service }
}

export function clusterOf (call: Call): string {
  const c = optional(call, 'clusterName') ?? optional(call, 'cluster') ?? DEFAULT_CLUSTER
  if (c.length > 64 || !/^[0-9a-zA-Z\-_]+$/.test(c)) throw illegal('clusterName')
  return c
}

export function portOf (raw: string): number {
  const port = Number(raw)
  if (!/^\d+$/.test(raw) || port > 65535) throw new BadParam('Param \'port\' is illegal, the value should be between 0 and 65535.')
  return port
}

export function ipOf (raw: string): string {
  if (raw.length > 128 || /[\s/?#@]/.test(raw)) throw illegal('ip')
  return raw
}

export function weightOf (raw: string | undefined): number {
  if (raw === undefined) return 1
  const w = Number(raw)
  if (!Number.isFinite(w)) throw new BadParam('Param \'weight\' is illegal, the value should be a number.')
  if (w < 0 || w > 10000) throw new BadParam('instance format invalid: The weights range from 0.0 to 10000.0')
  return w
}

/** Metadata as Nacos parses it: a JSON object, else `k1=v1,k2=v2`; values kept as strings. */
export function metadataOf (raw: string | undefined): Record<string, string> {
  if (raw === undefined) return {}
  if (raw.length > 1024) throw new BadParam('Param \'metadata\' is illegal, the param length should not exceed 1024.')
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    parsed = undefined
  }
  const out: Record<string, string> = Object.create(null)
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    for (const [k, v] of Object.entries(parsed)) out[k] = typeof v === 'string' ? v : JSON.stringify(v)
    return { ...out }
  }
  for (const pair of raw.split(',')) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new BadParam(`metadata format incorrect:${raw}`)
    out[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return { ...out }
}
