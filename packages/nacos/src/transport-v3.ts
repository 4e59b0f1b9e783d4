// HTTP v3 client API (Nacos 3.x): wrapped answers {code, message, data}; no config listener,
// publishing goes through the admin API (needs a login).
import { NacosError, errorCodes } from './errors.ts'
import type { RawResponse, ServerRequester } from './http.ts'
import { clip } from './http.ts'
import { grouped, httpError, md5, parseJson, toInstance, type BeatResult, type ConfigValue, type InstanceSpec, type Transport } from './transport.ts'

const NS = '/nacos/v3/client/ns'
const CS = '/nacos/v3/client/cs'
const ADMIN_CS = '/nacos/v3/admin/cs'

const nsId = (ns: string): string => (ns === '' ? 'public' : ns)

interface Wrapped {
  code: number
  message: string
  data: unknown
}

function unwrap (res: RawResponse, what: string): Wrapped {
  if (res.status === 403) throw httpError(res, what)
  const body = parseJson(res, what) as Partial<Wrapped> | null
  if (body === null || typeof body !== 'object' || typeof body.code !== 'number') throw httpError(res, what)
  return { code: body.code, message: String(body.message ?? ''), data: body.data }
}

export function isWrapped (body: string): boolean {
  try {
    return typeof (JSON.parse(body) as { code?: unknown }).code === 'number'
  } catch {
    return false
  }
}

function expectOk (w: Wrapped, res: RawResponse, what: string): unknown {
  if (w.code !== 0) {
    throw new NacosError(errorCodes.HTTP, `${what} failed: HTTP ${res.status} code ${w.code} ${clip(w.message)}`, { statusCode: res.status })
  }
  return w.data
}

function identity (ns: string, inst: InstanceSpec) {
  return {
    serviceName: inst.service,
    groupName: inst.group,
    namespaceId: nsId(ns),
    ip: inst.ip,
    port: inst.port,
    clusterName: inst.clusterName,
    ephemeral: inst.ephemeral
  }
}

function full (ns: string, inst: InstanceSpec) {
  return { ...identity(ns, inst), weight: inst.weight, enabled: inst.enabled, healthy: inst.healthy, metadata: JSON.stringify(inst.metadata) }
}

async function call (r: ServerRequester, spec: Parameters<ServerRequester['request']>[0], what: string): Promise<unknown> {
  const res = await r.request(spec)
  if ((res.status === 404 || res.status === 410) && !isWrapped(res.body)) {
    // No such API here (e.g. a server without the admin API): not a transient failure.
    throw new NacosError(errorCodes.UNSUPPORTED, `${what}: ${r.server.origin} has no ${spec.method} ${spec.path} (HTTP ${res.status})`, { statusCode: res.status })
  }
  return expectOk(unwrap(res, what), res, what)
}

export const httpV3: Transport = {
  name: 'http-v3',
  canPush: false,

  async register (r, ns, inst) {
    await call(r, { method: 'POST', path: `${NS}/instance`, form: full(ns, inst) }, 'register instance')
  },

  async deregister (r, ns, inst) {
    await call(r, { method: 'DELETE', path: `${NS}/instance`, query: identity(ns, inst) }, 'deregister instance')
  },

  // The client API has no update; registering the same ip:port again replaces the instance.
  async update (r, ns, inst) {
    await call(r, { method: 'POST', path: `${NS}/instance`, form: full(ns, inst) }, 'update instance')
  },

  async beat (r, ns, inst): Promise<BeatResult> {
    const res = await r.request({ method: 'POST', path: `${NS}/instance`, query: { heartBeat: true }, form: full(ns, inst) })
    const w = unwrap(res, 'beat')
    if (w.code === 21003) return { intervalMs: undefined, lightBeatEnabled: false, notFound: true }
    expectOk(w, res, 'beat')
    return { intervalMs: undefined, lightBeatEnabled: false, notFound: false }
  },

  async list (r, ns, service, group) {
    const res = await r.request({
      method: 'GET',
      path: `${NS}/instance/list`,
      query: { serviceName: service, groupName: group, namespaceId: nsId(ns), healthyOnly: false }
    })
    const w = unwrap(res, 'list instances')
    // A service nobody registered yet is an empty list, whichever way the server words it.
    const data = w.code === 21008 || w.code === 20004 ? [] : expectOk(w, res, 'list instances')
    const hosts = Array.isArray(data) ? data : []
    return { name: grouped(group, service), instances: hosts.map((h) => toInstance(h, service)), lastRefTime: Date.now() }
  },

  async getConfig (r, ns, key): Promise<ConfigValue | undefined> {
    const res = await r.request({ method: 'GET', path: `${CS}/config`, query: { dataId: key.dataId, groupName: key.group, namespaceId: nsId(ns) } })
    const w = unwrap(res, 'get config')
    if (w.code === 20004 || (res.status === 404 && w.code !== 0)) return undefined
    const data = expectOk(w, res, 'get config') as Record<string, unknown> | null
    const content = typeof data?.content === 'string' ? data.content : ''
    const type = data?.contentType ?? data?.type
    return { content, md5: md5(content), type: typeof type === 'string' ? type : undefined }
  },

  async publishConfig (r, ns, key, content, type) {
    await call(
      r,
      { method: 'POST', path: `${ADMIN_CS}/config`, form: { dataId: key.dataId, groupName: key.group, namespaceId: nsId(ns), content, type } },
      'publish config'
    )
  },

  async removeConfig (r, ns, key) {
    await call(r, { method: 'DELETE', path: `${ADMIN_CS}/config`, query: { dataId: key.dataId, groupName: key.group, namespaceId: nsId(ns) } }, 'remove config')
  }
}
