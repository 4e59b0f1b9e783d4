// HTTP v1 open API (Nacos 1.x, 2.x, 3.0-3.1): naming under /nacos/v1/ns, config under /nacos/v1/cs.
import { NacosError, errorCodes } from './errors.ts'
import { clip, encodeParams } from './http.ts'
import {
  grouped,
  httpError,
  md5,
  parseJson,
  toInstance,
  type BeatResult,
  type ConfigKey,
  type ConfigValue,
  type InstanceSpec,
  type PushTarget,
  type ServiceSnapshot,
  type Transport
} from './transport.ts'

const NS = '/nacos/v1/ns'
const naming = (inst: { group: string; service: string }) => ({ kind: 'naming' as const, serviceName: grouped(inst.group, inst.service) })
const config = (ns: string, key: ConfigKey) => ({ kind: 'config' as const, tenant: nsId(ns), group: key.group })
const CS = '/nacos/v1/cs'
/**
 * Nacos reads no form body over this (its Spring Boot's server.tomcat.max-http-form-post-size,
 * 2 MB): it answers 400 "Required request parameter 'dataId' ... is not present" (measured on 2.5.0).
 */
const NACOS_FORM_LIMIT = 2 * 1024 * 1024

// The public namespace is the empty id on v1 (2.x also maps `public` to it).
const nsId = (ns: string): string | undefined => (ns === '' || ns === 'public' ? undefined : ns)

function identity (ns: string, inst: InstanceSpec) {
  return {
    serviceName: grouped(inst.group, inst.service),
    groupName: inst.group,
    namespaceId: nsId(ns),
    ip: inst.ip,
    port: inst.port,
    clusterName: inst.clusterName,
    ephemeral: inst.ephemeral
  }
}

function full (ns: string, inst: InstanceSpec) {
  return {
    ...identity(ns, inst),
    weight: inst.weight,
    enabled: inst.enabled,
    healthy: inst.healthy,
    metadata: JSON.stringify(inst.metadata)
  }
}

export const httpV1: Transport = {
  name: 'http-v1',
  canPush: true,

  async register (r, ns, inst) {
    const res = await r.request({ method: 'POST', path: `${NS}/instance`, form: full(ns, inst), sign: naming(inst) })
    if (res.status !== 200) throw httpError(res, 'register instance')
  },

  async deregister (r, ns, inst) {
    const res = await r.request({ method: 'DELETE', path: `${NS}/instance`, query: identity(ns, inst), sign: naming(inst) })
    if (res.status !== 200) throw httpError(res, 'deregister instance')
  },

  async update (r, ns, inst) {
    const res = await r.request({ method: 'PUT', path: `${NS}/instance`, form: full(ns, inst), sign: naming(inst) })
    // Nacos 3.0/3.1 class the v1 update as an admin API (410); registering again replaces the instance.
    if (res.status === 410) return httpV1.register(r, ns, inst)
    if (res.status !== 200) throw httpError(res, 'update instance')
  },

  async beat (r, ns, inst, light): Promise<BeatResult> {
    const id = identity(ns, inst)
    // The server refreshes the instance named *inside* the beat JSON, so it carries the grouped name.
    const beat = light
      ? undefined
      : JSON.stringify({
        serviceName: id.serviceName,
        ip: inst.ip,
        port: inst.port,
        cluster: inst.clusterName,
        weight: inst.weight,
        metadata: inst.metadata,
        scheduled: false
      })
    const res = await r.request({
      method: 'PUT',
      path: `${NS}/instance/beat`,
      query: id,
      form: beat === undefined ? undefined : { beat },
      sign: naming(inst)
    })
    if (res.status !== 200) throw httpError(res, 'beat')
    const body = parseJson(res, 'beat') as Record<string, unknown>
    const interval = Number(body.clientBeatInterval)
    return {
      intervalMs: Number.isFinite(interval) && interval > 0 ? interval : undefined,
      lightBeatEnabled: body.lightBeatEnabled === true,
      notFound: Number(body.code) === 20404
    }
  },

  async list (r, ns, service, group, push?: PushTarget): Promise<ServiceSnapshot> {
    const res = await r.request({
      method: 'GET',
      path: `${NS}/instance/list`,
      query: {
        serviceName: grouped(group, service),
        groupName: group,
        namespaceId: nsId(ns),
        clusters: '',
        healthyOnly: false,
        udpPort: push?.udpPort,
        clientIP: push?.clientIp
      },
      sign: naming({ group, service })
    })
    if (res.status !== 200) throw httpError(res, 'list instances')
    return parseServiceInfo(parseJson(res, 'list instances'), service, group)
  },

  async getConfig (r, ns, key): Promise<ConfigValue | undefined> {
    const res = await r.request({ method: 'GET', path: `${CS}/configs`, query: { dataId: key.dataId, group: key.group, tenant: nsId(ns) }, sign: config(ns, key) })
    if (res.status === 404) return undefined
    if (res.status !== 200) throw httpError(res, 'get config')
    const type = res.headers['config-type']
    return { content: res.body, md5: md5(res.body), type: typeof type === 'string' ? type : undefined }
  },

  async publishConfig (r, ns, key, content, type) {
    const form = { dataId: key.dataId, group: key.group, tenant: nsId(ns), content, type }
    const res = await r.request({ method: 'POST', path: `${CS}/configs`, form, sign: config(ns, key) })
    const bytes = res.status === 400 ? Buffer.byteLength(encodeParams(form)) : 0
    if (bytes > NACOS_FORM_LIMIT) {
      throw new NacosError(
        errorCodes.TOO_LARGE,
        `publishing config "${key.dataId}" (group ${key.group}) over HTTP: a form of ${bytes} bytes, over the ${NACOS_FORM_LIMIT} Nacos reads ` +
          `(server.tomcat.max-http-form-post-size; it answered 400 ${clip(res.body)}); publish large configs over gRPC (transport 'auto' or 'grpc')`,
        { statusCode: 400 }
      )
    }
    if (res.status !== 200 || res.body.trim() !== 'true') throw httpError(res, 'publish config')
  },

  async removeConfig (r, ns, key) {
    const res = await r.request({ method: 'DELETE', path: `${CS}/configs`, query: { dataId: key.dataId, group: key.group, tenant: nsId(ns) }, sign: config(ns, key) })
    if (res.status !== 200) throw httpError(res, 'remove config')
  },

  async listenConfigs (r, ns, keys, timeoutMs, signal): Promise<ConfigKey[]> {
    const tenant = nsId(ns)
    const suffix = tenant === undefined ? '' : `\u0002${tenant}`
    const listening = keys.map((k) => `${k.dataId}\u0002${k.group}\u0002${k.md5}${suffix}\u0001`).join('')
    const res = await r.request({
      method: 'POST',
      path: `${CS}/configs/listener`,
      form: { 'Listening-Configs': listening, tenant },
      headers: { 'long-pulling-timeout': String(timeoutMs) },
      // The server holds up to the timeout; allow for the trip on top.
      timeoutMs: timeoutMs + 10_000,
      signal,
      sign: { kind: 'config', tenant, group: undefined }
    })
    if (res.status !== 200) throw httpError(res, 'config long poll')
    const changed: ConfigKey[] = []
    for (const record of decodeURIComponent(res.body.trim().replace(/\+/g, ' ')).split('\u0001')) {
      const [dataId, group] = record.split('\u0002')
      if (dataId !== undefined && dataId !== '' && group !== undefined) changed.push({ dataId, group })
    }
    return changed
  }
}

/** Map a v1 ServiceInfo (list answer or UDP push payload). */
export function parseServiceInfo (raw: unknown, service: string, group: string): ServiceSnapshot {
  const info = (raw ?? {}) as Record<string, unknown>
  const hosts = Array.isArray(info.hosts) ? info.hosts : []
  const lastRefTime = Number(info.lastRefTime)
  return {
    name: typeof info.name === 'string' && info.name.includes('@@') ? info.name : grouped(group, service),
    instances: hosts.map((h) => toInstance(h, service)),
    lastRefTime: Number.isFinite(lastRefTime) ? lastRefTime : Date.now()
  }
}
