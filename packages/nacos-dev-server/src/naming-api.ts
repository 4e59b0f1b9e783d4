import { HttpAnswer } from './errors.ts'
import { bool, json, optional, text, type Call, type Handler, type Reply } from './http.ts'
import { checkTimings, type InstanceInput, type NamingStore } from './naming-store.ts'
import type { ResolvedOptions } from './options.ts'
import { BadParam, clusterOf, ipOf, metadataOf, namespaceOf, need, portOf, serviceOf, weightOf, type Flavour } from './params.ts'
import { canPush, type UdpPusher } from './udp-push.ts'

interface Deps {
  store: NamingStore
  pusher: UdpPusher
  opts: ResolvedOptions
}

const clustersOf = (raw: string | undefined) => (raw === undefined ? [] : raw.split(',').filter((c) => c !== ''))

/** The instance a register call describes (v1 and v3 take the same form). */
function instanceOf (call: Call, flavour: Flavour): InstanceInput {
  const metadata = metadataOf(optional(call, 'metadata'))
  const timings = checkTimings(metadata)
  if (timings !== undefined) throw new BadParam(timings)
  return {
    ip: ipOf(need(call, 'ip', flavour)),
    port: portOf(need(call, 'port', flavour)),
    clusterName: clusterOf(call),
    weight: weightOf(optional(call, 'weight')),
    healthy: bool(optional(call, 'healthy'), true),
    enabled: bool(optional(call, 'enabled') ?? optional(call, 'enable'), true),
    ephemeral: bool(optional(call, 'ephemeral'), true),
    metadata
  }
}

function identityOf (call: Call, flavour: Flavour) {
  return {
    namespaceId: namespaceOf(call),
    ...serviceOf(call, flavour),
    ip: ipOf(need(call, 'ip', flavour)),
    port: portOf(need(call, 'port', flavour)),
    cluster: clusterOf(call)
  }
}

/** A beat's JSON, as Nacos's RsInfo: unknown fields ignored, serviceName grouped. */
interface BeatInfo {
  ip?: string
  port?: number
  cluster?: string
  serviceName?: string
  weight?: number
  metadata?: Record<string, unknown>
  ephemeral?: boolean
}

function parseBeat (raw: string): BeatInfo {
  let beat: unknown
  try {
    beat = JSON.parse(raw)
  } catch {
    throw new BadParam('Param \'beat\' is illegal, the value should be a JSON object.')
  }
  if (beat === null || typeof beat !== 'object' || Array.isArray(beat)) throw new BadParam('Param \'beat\' is illegal, the value should be a JSON object.')
  return beat as BeatInfo
}

export function namingV1 (d: Deps): Record<string, Handler> {
  const { store, pusher, opts } = d

  const serviceInfo = (namespaceId: string, name: string, group: string, clustersRaw: string, healthyOnly: boolean) => ({
    name,
    groupName: group,
    clusters: clustersRaw,
    cacheMillis: opts.cacheMillis,
    hosts: store.hosts(namespaceId, name, clustersOf(clustersRaw), healthyOnly),
    lastRefTime: Date.now(),
    checksum: '',
    allIPs: false,
    reachProtectionThreshold: false,
    valid: true
  })

  return {
    'POST /nacos/v1/ns/instance': (call) => {
      const { name } = serviceOf(call, 'v1')
      store.register(namespaceOf(call), name, instanceOf(call, 'v1'))
      return text('ok')
    },

    'DELETE /nacos/v1/ns/instance': (call) => {
      const id = identityOf(call, 'v1')
      store.deregister(id.namespaceId, id.name, id.ip, id.port, id.cluster)
      return text('ok')
    },

    'PUT /nacos/v1/ns/instance': (call) => {
      const id = identityOf(call, 'v1')
      if (store.service(id.namespaceId, id.name) === undefined) {
        throw new BadParam(`service not found, namespace: ${id.namespaceId}, service: ${id.name}`)
      }
      const patch: { weight: number; enabled: boolean; metadata?: Record<string, string> } = {
        weight: weightOf(optional(call, 'weight')),
        enabled: bool(optional(call, 'enabled') ?? optional(call, 'enable'), true)
      }
      const metadata = optional(call, 'metadata')
      if (metadata !== undefined) patch.metadata = metadataOf(metadata)
      store.update(id.namespaceId, id.name, id.ip, id.port, id.cluster, patch)
      return text('ok')
    },

    'GET /nacos/v1/ns/instance': (call) => {
      const id = identityOf(call, 'v1')
      const i = store.find(id.namespaceId, id.name, id.ip, id.port, id.cluster)
      if (i === undefined) throw new HttpAnswer(404, 'no matched ip found!')
      const v = store.view(i)
      return json({ service: id.name, ip: v.ip, port: v.port, clusterName: v.clusterName, weight: v.weight, healthy: v.healthy, instanceId: v.instanceId, metadata: v.metadata })
    },

    'PUT /nacos/v1/ns/instance/beat': (call) => {
      const namespaceId = namespaceOf(call)
      const { name } = serviceOf(call, 'v1')
      const rawBeat = optional(call, 'beat')
      const beat = rawBeat === undefined ? undefined : parseBeat(rawBeat)
      let cluster = clusterOf(call)
      let ip = optional(call, 'ip') ?? ''
      let port = Number(optional(call, 'port') ?? 0)
      if (beat !== undefined) {
        if (typeof beat.cluster === 'string' && beat.cluster !== '') cluster = beat.cluster
        ip = String(beat.ip ?? '')
        port = Number(beat.port ?? 0)
      }
      let instance = store.find(namespaceId, name, ip, port, cluster)
      let code = 10200
      if (instance === undefined && beat === undefined) code = 20404
      else if (instance === undefined && beat !== undefined) {
        // Nacos re-registers an unknown instance from a full beat's JSON.
        const metadata = metadataOf(beat.metadata === undefined ? undefined : JSON.stringify(beat.metadata))
        store.register(namespaceId, name, {
          ip: ipOf(ip),
          port: portOf(String(port)),
          clusterName: cluster,
          weight: typeof beat.weight === 'number' ? weightOf(String(beat.weight)) : 1,
          healthy: true,
          enabled: true,
          ephemeral: beat.ephemeral ?? true,
          metadata
        })
        instance = store.find(namespaceId, name, ip, port, cluster)
      } else if (instance !== undefined && (beat === undefined || beat.serviceName === name)) {
        // A full beat refreshes the instance its own serviceName names; without one it refreshes nothing.
        store.beat(instance, namespaceId)
      }
      return json({ clientBeatInterval: store.beatInterval(instance), code, lightBeatEnabled: true })
    },

    'GET /nacos/v1/ns/instance/list': (call) => {
      const namespaceId = namespaceOf(call)
      const { name, group } = serviceOf(call, 'v1')
      const clustersRaw = optional(call, 'clusters') ?? ''
      const udpPort = Number(optional(call, 'udpPort') ?? 0)
      if (Number.isInteger(udpPort) && udpPort > 0 && udpPort <= 65535 && canPush(call.headers['user-agent'], header(call, 'client-version'))) {
        pusher.subscribe(namespaceId, name, clustersOf(clustersRaw), pushTarget(call), udpPort)
      }
      return json(serviceInfo(namespaceId, name, group, clustersRaw, bool(optional(call, 'healthyOnly'), false)))
    },

    'GET /nacos/v1/ns/service/list': (call) => {
      const namespaceId = namespaceOf(call)
      const pageNo = positive(call, 'pageNo')
      const pageSize = positive(call, 'pageSize')
      const group = optional(call, 'groupName') ?? 'DEFAULT_GROUP'
      const names = store
        .services(namespaceId)
        .filter((s) => s.groupName === group)
        .map((s) => s.name.slice(group.length + 2))
        .sort()
      return json({ count: names.length, doms: names.slice((pageNo - 1) * pageSize, pageNo * pageSize) })
    },

    'GET /nacos/v1/ns/operator/metrics': (call) => {
      if (bool(optional(call, 'onlyStatus'), true)) return json({ status: 'UP' })
      const { services, instances } = store.counts()
      return json({
        status: 'UP',
        serviceCount: services,
        instanceCount: instances,
        subscribeCount: pusher.subscriberCount(),
        responsibleInstanceCount: instances,
        clientCount: instances,
        load: 0,
        cpu: process.cpuUsage().user / 1e6,
        mem: process.memoryUsage().rss / 1024 ** 3
      })
    }
  }
}

/** The v3 client API: same store, `{code, message, data}` answers, ungrouped service names. */
export function namingV3 (d: Deps): Record<string, Handler> {
  const { store } = d
  return {
    'POST /nacos/v3/client/ns/instance': (call) => {
      const namespaceId = namespaceOf(call)
      const { name } = serviceOf(call, 'v3')
      if (bool(optional(call, 'heartBeat'), false)) {
        const id = identityOf(call, 'v3')
        const i = store.find(namespaceId, name, id.ip, id.port, id.cluster)
        if (i === undefined) return json({ code: 21003, message: 'instance not found', data: null })
        store.beat(i, namespaceId)
        return ok('ok')
      }
      store.register(namespaceId, name, instanceOf(call, 'v3'))
      return ok('ok')
    },

    'DELETE /nacos/v3/client/ns/instance': (call) => {
      const id = identityOf(call, 'v3')
      store.deregister(id.namespaceId, id.name, id.ip, id.port, id.cluster)
      return ok('ok')
    },

    'GET /nacos/v3/client/ns/instance/list': (call) => {
      const namespaceId = namespaceOf(call)
      const { name } = serviceOf(call, 'v3')
      // Nacos 3's v3 list carries no instanceId.
      const hosts = store.hosts(namespaceId, name, clustersOf(optional(call, 'clusterName')), bool(optional(call, 'healthyOnly'), false))
      return ok(hosts.map(({ instanceId: _id, ...rest }) => rest))
    }
  }
}

export const ok = (data: unknown): Reply => json({ code: 0, message: 'success', data })

/** v3 answers a bad parameter with 400 and a wrapped body. */
export function v3Error (err: BadParam): Reply {
  return err.missing
    ? json({ code: 10000, message: 'parameter missing', data: err.message }, 400)
    : json({ code: 20002, message: 'parameter validate error', data: err.message }, 400)
}

function positive (call: Call, name: string): number {
  const n = Number(need(call, name, 'v1'))
  if (!Number.isInteger(n) || n < 1) throw new BadParam(`Param '${name}' is illegal, the value should be a positive integer.`)
  return n
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1'

/**
 * Where to push: the clientIP given, as Nacos does; but a client that reached us over loopback
 * is on this host, so it is pushed on loopback even when it names the host's external address
 * (the official SDK sends its first interface's address), keeping dev traffic on the machine.
 */
function pushTarget (call: Call): string {
  const given = optional(call, 'clientIP')
  if (given === undefined || (isLoopback(call.remoteAddress) && !isLoopback(given))) return call.remoteAddress
  return given
}

function header (call: Call, name: string): string | undefined {
  const v = call.headers[name]
  return Array.isArray(v) ? v[0] : v
}
