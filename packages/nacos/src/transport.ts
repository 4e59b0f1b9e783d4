// The transport seam: one implementation per server API flavour (HTTP v1, HTTP v3 client API,
// gRPC). Parameter names and answer shapes are mapped inside each one.
import { createHash } from 'node:crypto'
import type { Instance } from './discovery.ts'
import { NacosError, errorCodes } from './errors.ts'
import { clip, type RawResponse, type ServerRequester } from './http.ts'

export type TransportName = 'http-v1' | 'http-v3' | 'grpc'

/** An instance as registered by this client. */
export interface InstanceSpec {
  service: string
  group: string
  ip: string
  port: number
  weight: number
  enabled: boolean
  healthy: boolean
  ephemeral: boolean
  clusterName: string
  metadata: Record<string, string>
}

export interface BeatResult {
  /** The pace the server asks for, when it says. */
  intervalMs: number | undefined
  lightBeatEnabled: boolean
  /** The server has forgotten the instance: register again. */
  notFound: boolean
}

export interface ServiceSnapshot {
  /** `group@@service`. */
  name: string
  instances: Instance[]
  /** Server time (ms) of the answer; orders polls against pushes. */
  lastRefTime: number
  /**
   * Since when (ms since epoch) the answering server is known to have run without a restart: the
   * set-up of the gRPC connection the answer came on (a restart ends the connection). Undefined
   * over HTTP (polls, UDP push), where nothing tells a restarted server apart.
   */
  upSince?: number
}

export interface ConfigKey {
  dataId: string
  group: string
}

export interface ConfigValue {
  content: string
  md5: string
  type: string | undefined
}

export interface PushTarget {
  udpPort: number
  clientIp: string
}

export interface Transport {
  readonly name: TransportName
  /** Whether list calls can subscribe to UDP push. */
  readonly canPush: boolean
  register(r: ServerRequester, ns: string, inst: InstanceSpec): Promise<void>
  deregister(r: ServerRequester, ns: string, inst: InstanceSpec): Promise<void>
  update(r: ServerRequester, ns: string, inst: InstanceSpec): Promise<void>
  beat(r: ServerRequester, ns: string, inst: InstanceSpec, light: boolean): Promise<BeatResult>
  list(r: ServerRequester, ns: string, service: string, group: string, push: PushTarget | undefined): Promise<ServiceSnapshot>
  getConfig(r: ServerRequester, ns: string, key: ConfigKey): Promise<ConfigValue | undefined>
  publishConfig(r: ServerRequester, ns: string, key: ConfigKey, content: string, type: string | undefined): Promise<void>
  removeConfig(r: ServerRequester, ns: string, key: ConfigKey): Promise<void>
  /**
   * Make `specs` (ephemeral, all of one service) this client's instances of the service, in one
   * request; where the API has it (gRPC's BatchInstanceRequest).
   */
  batchRegister?: (r: ServerRequester, ns: string, group: string, service: string, specs: InstanceSpec[]) => Promise<void>
  /** Subscribe to a service's changes (pushed) and answer its list now; where the API has it. */
  watch?: (r: ServerRequester, ns: string, service: string, group: string) => Promise<ServiceSnapshot>
  /** End a subscription made with `watch`. */
  unwatch?: (r: ServerRequester, ns: string, service: string, group: string) => Promise<void>
  /** Batched long poll: resolves with the keys whose md5 differs (empty on timeout). Absent where the API has none. */
  listenConfigs?: (r: ServerRequester, ns: string, keys: Array<ConfigKey & { md5: string }>, timeoutMs: number, signal: AbortSignal) => Promise<ConfigKey[]>
}

export function md5 (content: string): string {
  return createHash('md5').update(content, 'utf8').digest('hex')
}

export const grouped = (group: string, service: string): string => `${group}@@${service}`

/** `group@@service` -> [group, service]; a bare name takes the default group. */
export function splitService (name: string, defaultGroup: string): [string, string] {
  const at = name.indexOf('@@')
  return at < 0 ? [defaultGroup, name] : [name.slice(0, at), name.slice(at + 2)]
}

export function httpError (res: RawResponse, what: string): NacosError {
  const code = res.status === 403 ? errorCodes.AUTH : errorCodes.HTTP
  return new NacosError(code, `${what} failed: HTTP ${res.status} ${clip(res.body)}`, { statusCode: res.status })
}

export function parseJson (res: RawResponse, what: string): unknown {
  try {
    return JSON.parse(res.body)
  } catch (err) {
    throw new NacosError(errorCodes.HTTP, `${what}: answer is not JSON: ${clip(res.body)}`, { cause: err, statusCode: res.status })
  }
}

/** Map one host of a Nacos answer to our Instance. */
export function toInstance (raw: unknown, service: string): Instance {
  const h = (raw ?? {}) as Record<string, unknown>
  const metadata: Record<string, string> = {}
  if (typeof h.metadata === 'object' && h.metadata !== null) {
    // for…in, not Object.entries: no pair arrays for each of a pushed list's thousands of instances.
    const meta = h.metadata as Record<string, unknown>
    for (const k in meta) {
      if (!Object.hasOwn(meta, k)) continue
      const v = meta[k]
      metadata[k] = typeof v === 'string' ? v : JSON.stringify(v)
    }
  }
  const ip = String(h.ip ?? '')
  const port = Number(h.port ?? 0)
  const clusterName = typeof h.clusterName === 'string' && h.clusterName !== '' ? h.clusterName : 'DEFAULT'
  return {
    instanceId: typeof h.instanceId === 'string' ? h.instanceId : `${ip}#${port}#${clusterName}#${service}`,
    ip,
    port,
    weight: Number(h.weight ?? 1),
    healthy: h.healthy !== false,
    enabled: h.enabled !== false,
    ephemeral: h.ephemeral !== false,
    clusterName,
    serviceName: service,
    metadata
  }
}
