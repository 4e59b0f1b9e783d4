// Nacos's native gRPC protocol (2.x, 3.x) behind the transport seam. Ephemeral instances are
// registered on the connection and live as long as it does (no beats); watched services are
// subscribed and pushed (NotifySubscriberRequest); listened configs are pushed
// (ConfigChangeNotifyRequest). Naming and config use one connection each, as the official
// SDKs do (the server keeps naming state only for connections labelled `naming`).
import { NacosError } from './errors.ts'
import { GrpcAnswerError, MessageTooLargeError, type GrpcConnection } from './grpc-connection.ts'
import { GrpcSession } from './grpc-session.ts'
import type { ServerRequester } from './http.ts'
import type { Logger } from './logger.ts'
import { grouped, md5, toInstance, type ConfigKey, type InstanceSpec, type ServiceSnapshot, type Transport } from './transport.ts'
import { httpV1 } from './transport-v1.ts'

export interface GrpcTransportOptions {
  namespace: string
  /** `AppName` label of the connections. @default 'unknown' */
  appName?: string | undefined
  /** Application labels, sent as `app_<key>`. */
  labels?: Record<string, string>
  timeoutMs: number
  /** Largest gRPC message sent or received (`grpcMaxMessageBytes`). */
  maxMessageBytes: number
  logger: Logger
  /** Asks the pool to connect again (rotating servers). */
  reconnect: () => Promise<void>
}

/** A gRPC transport plus what the pool and clients need besides the seam. */
export interface GrpcTransport extends Transport {
  /** Opens the naming connection to `r`'s server (the probe). */
  connect(r: ServerRequester): Promise<void>
  /**
   * Service infos pushed or re-read after a reconnect (raw Nacos ServiceInfo), with the `upSince`
   * of the connection they came on (see `ServiceSnapshot.upSince`).
   */
  onServiceInfo(listener: (raw: Record<string, unknown>, upSince: number) => void): () => void
  /**
   * Called when the naming connection comes back after a loss, before its subscriptions are
   * redone: their answers may come from a server that restarted empty.
   */
  onReconnect(listener: () => void): () => void
  /**
   * Note a server's generation (`3` for Nacos 3.x, found by the pool's probe): config listens to
   * a 3.x server name the default namespace `public`, as the 3.x clients do.
   */
  setGeneration(server: string, generation: 2 | 3): void
  /** Naming and config connections set up so far (reconnects = this minus 2). */
  readonly connects: number
  close(): void
}

/**
 * What this client publishes for one service on its naming connection. Nacos keeps one entry per
 * connection and service: a register or a batch replaces the previous one, a deregister drops it
 * whole. So several instances of one service go as one BatchInstanceRequest, always all of them.
 */
interface Published {
  ns: string
  service: string
  group: string
  /** By instance key, in registration order. */
  specs: Map<string, InstanceSpec>
  /** Set by `batchRegister`: sent as a batch even with one instance. */
  batch: boolean
  /** Serializes changes to this entry (each one is sent whole). */
  queue: Promise<unknown>
}

interface Subscription {
  ns: string
  service: string
  group: string
}

const nsName = (ns: string): string => (ns === '' ? 'public' : ns)
const tenant = (ns: string): string => (ns === 'public' ? '' : ns)
const ckey = (dataId: string, group: string): string => `${group}\u0002${dataId}`

/** The connection labels: `AppName` and the application's as `app_<key>`, as Nacos's Java client sends them. */
export function connectionLabels (appName: string | undefined, labels: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = { AppName: appName ?? 'unknown' }
  for (const [k, v] of Object.entries(labels)) out[`app_${k}`] = v
  return out
}

function instanceBody (inst: InstanceSpec): Record<string, unknown> {
  return {
    ip: inst.ip,
    port: inst.port,
    weight: inst.weight,
    enabled: inst.enabled,
    healthy: inst.healthy,
    ephemeral: true,
    clusterName: inst.clusterName,
    serviceName: inst.service,
    metadata: inst.metadata
  }
}

export function parseGrpcServiceInfo (raw: Record<string, unknown>, service: string, group: string, upSince?: number): ServiceSnapshot {
  const hosts = Array.isArray(raw.hosts) ? raw.hosts : []
  const lastRefTime = Number(raw.lastRefTime)
  return {
    name: grouped(group, service),
    instances: hosts.map((h) => toInstance(h, grouped(group, service))),
    lastRefTime: Number.isFinite(lastRefTime) && lastRefTime > 0 ? lastRefTime : Date.now(),
    ...(upSince === undefined ? {} : { upSince })
  }
}

/** A config too large for a gRPC message, said with its name and size (the request's error, not the server's). */
function configTooLarge (err: unknown, what: string, key: ConfigKey, ns: string, contentBytes?: number): unknown {
  if (!(err instanceof MessageTooLargeError)) return err
  const bytes = err.bytes ?? contentBytes
  const size = err.bytes !== undefined ? `a message of ${err.bytes} bytes` : contentBytes !== undefined ? `content of ${contentBytes} bytes` : 'a message'
  const limit = err.limitBytes === undefined ? '' : ` of ${err.limitBytes} bytes`
  return new MessageTooLargeError(
    `${what} config "${key.dataId}" (group ${key.group}${ns === '' ? '' : `, namespace ${ns}`}) over gRPC: ${size}, over the message size limit${limit}; ` +
      'raise grpcMaxMessageBytes (and the server\'s nacos.remote.server.grpc.sdk.max-inbound-message-size) or make the config smaller',
    err,
    { bytes, limitBytes: err.limitBytes }
  )
}

export function createGrpcTransport (opts: GrpcTransportOptions): GrpcTransport {
  const published = new Map<string, Published>()
  const subscriptions = new Map<string, Subscription>()
  const serviceListeners = new Set<(raw: Record<string, unknown>, upSince: number) => void>()
  const reconnectListeners = new Set<() => void>()
  const configWaiters = new Set<(key: ConfigKey | undefined) => void>()
  const labels = connectionLabels(opts.appName, opts.labels)
  /** Servers (`host:port`) known to be Nacos 3.x. */
  const third = new Set<string>()
  /**
   * The tenant of a config listen: on 3.x the default namespace is named `public`, as the 3.x
   * clients name it (a 3.1.0 server can push \`tenant=null\` to listeners walked after a blank-tenant
   * listener of the same key, so a blank one would break other clients there); '' on 2.x, where
   * `public` would be another namespace.
   */
  const listenTenant = (r: ServerRequester, ns: string): string => (third.has(`${r.server.host}:${r.server.port}`) ? nsName(ns) : tenant(ns))

  const emitService = (raw: Record<string, unknown>, conn: GrpcConnection): void => {
    for (const l of serviceListeners) l(raw, conn.upSince)
  }
  const wakeConfig = (key: ConfigKey | undefined): void => {
    for (const w of [...configWaiters]) w(key)
  }

  async function headers (r: ServerRequester): Promise<Record<string, string>> {
    const token = await r.token?.()
    return token === undefined ? {} : { accessToken: token }
  }

  /** One call with the token in the headers; a 403 logs in again once and retries. */
  async function call (conn: GrpcConnection, r: ServerRequester, type: string, body: Record<string, unknown>) {
    try {
      return await conn.request(type, body, await headers(r))
    } catch (err) {
      if ((err as NacosError).code !== 'FLOWTAG_NACOS_AUTH' || r.dropToken === undefined) throw err
      r.dropToken()
      return conn.request(type, body, await headers(r))
    }
  }

  const registerBody = (ns: string, spec: InstanceSpec, type: string) => ({
    namespace: nsName(ns),
    serviceName: spec.service,
    groupName: spec.group,
    type,
    instance: instanceBody(spec)
  })

  /** Sends a service's entry as it now stands: one instance, a batch, or (none left) a deregister. */
  async function sendEntry (conn: GrpcConnection, r: ServerRequester, p: Published, dropped?: InstanceSpec): Promise<void> {
    const specs = [...p.specs.values()]
    if (specs.length === 0 && !p.batch) {
      if (dropped !== undefined) await call(conn, r, 'InstanceRequest', registerBody(p.ns, dropped, 'deregisterInstance'))
      return
    }
    if (specs.length === 1 && !p.batch) {
      await call(conn, r, 'InstanceRequest', registerBody(p.ns, specs[0] as InstanceSpec, 'registerInstance'))
      return
    }
    await call(conn, r, 'BatchInstanceRequest', {
      namespace: nsName(p.ns),
      serviceName: p.service,
      groupName: p.group,
      type: 'batchRegisterInstance',
      instances: specs.map(instanceBody)
    })
  }

  function entryOf (ns: string, group: string, service: string): Published {
    const key = `${ns}\u0002${grouped(group, service)}`
    let p = published.get(key)
    if (p === undefined) {
      p = { ns, service, group, specs: new Map(), batch: false, queue: Promise.resolve() }
      published.set(key, p)
    }
    return p
  }

  /** Runs one change of an entry after the previous one (a change is a whole new entry sent). */
  function serial<T> (p: Published, task: () => Promise<T>): Promise<T> {
    const run = p.queue.then(task, task)
    p.queue = run.catch(() => {})
    return run
  }

  function forget (p: Published): void {
    const key = `${p.ns}\u0002${grouped(p.group, p.service)}`
    if (p.specs.size === 0 && published.get(key) === p) published.delete(key)
  }
  const subscribeBody = (s: Subscription, subscribe: boolean) => ({
    namespace: nsName(s.ns),
    serviceName: s.service,
    groupName: s.group,
    clusters: '',
    subscribe
  })

  const naming = new GrpcSession({
    module: 'naming',
    namespace: opts.namespace,
    labels,
    timeoutMs: opts.timeoutMs,
    maxMessageBytes: opts.maxMessageBytes,
    logger: opts.logger,
    handlers: {
      NotifySubscriberRequest: (body, conn) => {
        const info = body.serviceInfo
        if (info !== null && typeof info === 'object') emitService(info as Record<string, unknown>, conn)
        return {}
      }
    },
    // Redo: instances first (a subscriber of its own service then sees itself), one request per
    // service as it was last sent (a batch stays a batch), then subscriptions, whose answers are
    // delivered like pushes.
    redo: async (conn, r) => {
      if (naming.connects > 0) for (const l of reconnectListeners) l()
      for (const p of published.values()) if (p.specs.size > 0) await sendEntry(conn, r, p)
      for (const s of subscriptions.values()) {
        const res = await call(conn, r, 'SubscribeServiceRequest', subscribeBody(s, true))
        const info = res.body.serviceInfo
        if (info !== null && typeof info === 'object') emitService({ ...(info as Record<string, unknown>), name: s.service, groupName: s.group }, conn)
      }
    },
    reconnect: opts.reconnect,
    holdsState: () => published.size > 0 || subscriptions.size > 0
  })

  const config = new GrpcSession({
    module: 'config',
    namespace: opts.namespace,
    labels,
    timeoutMs: opts.timeoutMs,
    maxMessageBytes: opts.maxMessageBytes,
    logger: opts.logger,
    handlers: {
      ConfigChangeNotifyRequest: (body) => {
        wakeConfig({ dataId: String(body.dataId ?? ''), group: String(body.group ?? '') })
        return {}
      }
    },
    // Config listeners are redone by the listen loop: it sends its batch listen again.
    redo: async () => {},
    reconnect: opts.reconnect,
    holdsState: () => false,
    onLost: () => wakeConfig(undefined)
  })

  const transport: GrpcTransport = {
    name: 'grpc',
    canPush: false,

    async connect (r) {
      await naming.connection(r)
    },

    onServiceInfo (listener) {
      serviceListeners.add(listener)
      return () => serviceListeners.delete(listener)
    },

    onReconnect (listener) {
      reconnectListeners.add(listener)
      return () => reconnectListeners.delete(listener)
    },

    setGeneration (server, generation) {
      if (generation === 3) third.add(server)
      else third.delete(server)
    },

    get connects () {
      return naming.connects + config.connects
    },

    close () {
      naming.close()
      config.close()
      for (const w of [...configWaiters]) w(undefined)
    },

    async register (r, ns, inst) {
      // Persistent instances are not connection-scoped: they keep the HTTP API (and its beats-free life).
      if (!inst.ephemeral) return httpV1.register(r, ns, inst)
      const p = entryOf(ns, inst.group, inst.service)
      await serial(p, async () => {
        const conn = await naming.connection(r)
        const before = new Map(p.specs)
        // In the record before the call: a reconnect racing it redoes the entry with this instance.
        p.specs.set(instanceKeyOf(inst), inst)
        try {
          await sendEntry(conn, r, p)
        } catch (err) {
          p.specs = before
          forget(p)
          throw err
        }
      })
    },

    async batchRegister (r, ns, group, service, specs) {
      const p = entryOf(ns, group, service)
      await serial(p, async () => {
        const conn = await naming.connection(r)
        const before = { specs: p.specs, batch: p.batch }
        p.specs = new Map(specs.map((s) => [instanceKeyOf(s), s]))
        p.batch = true
        try {
          // An empty batch is valid: Nacos then lists none of this connection's instances of the service.
          await sendEntry(conn, r, p)
        } catch (err) {
          Object.assign(p, before)
          throw err
        }
        if (p.specs.size === 0) forget(p)
      })
    },

    async deregister (r, ns, inst) {
      if (!inst.ephemeral) return httpV1.deregister(r, ns, inst)
      const p = entryOf(ns, inst.group, inst.service)
      await serial(p, async () => {
        // Forget it first: a reconnect racing this call must not bring it back.
        const had = p.specs.delete(instanceKeyOf(inst))
        forget(p)
        if (!had) return
        const conn = await naming.connection(r)
        // The others of the service stay: they are sent again without it (Nacos drops the whole entry on a deregister).
        await sendEntry(conn, r, p, inst)
      })
    },

    async update (r, ns, inst) {
      if (!inst.ephemeral) return httpV1.update(r, ns, inst)
      // Registering again on the same connection replaces the instance's fields.
      await transport.register(r, ns, inst)
    },

    async beat (r, ns, inst) {
      if (!inst.ephemeral) return httpV1.beat(r, ns, inst, false)
      // The connection keeps ephemeral instances alive; make sure there is one (and it was redone).
      await naming.connection(r)
      const p = published.get(`${ns}\u0002${grouped(inst.group, inst.service)}`)
      return { intervalMs: undefined, lightBeatEnabled: false, notFound: p?.specs.has(instanceKeyOf(inst)) !== true }
    },

    async list (r, ns, service, group) {
      const conn = await naming.connection(r)
      const res = await call(conn, r, 'ServiceQueryRequest', { namespace: nsName(ns), serviceName: service, groupName: group, cluster: '', healthyOnly: false, udpPort: 0 })
      return parseGrpcServiceInfo((res.body.serviceInfo ?? {}) as Record<string, unknown>, service, group)
    },

    async watch (r, ns, service, group) {
      const s: Subscription = { ns, service, group }
      subscriptions.set(grouped(group, service), s)
      const conn = await naming.connection(r)
      const res = await call(conn, r, 'SubscribeServiceRequest', subscribeBody(s, true))
      return parseGrpcServiceInfo((res.body.serviceInfo ?? {}) as Record<string, unknown>, service, group, conn.upSince)
    },

    async unwatch (r, ns, service, group) {
      subscriptions.delete(grouped(group, service))
      const conn = await naming.connection(r)
      await call(conn, r, 'SubscribeServiceRequest', subscribeBody({ ns, service, group }, false))
    },

    async getConfig (r, ns, key) {
      const conn = await config.connection(r)
      try {
        const res = await call(conn, r, 'ConfigQueryRequest', { dataId: key.dataId, group: key.group, tenant: tenant(ns), tag: '' })
        const content = String(res.body.content ?? '')
        const type = res.body.contentType
        return { content, md5: typeof res.body.md5 === 'string' && res.body.md5 !== '' ? res.body.md5 : md5(content), type: typeof type === 'string' && type !== '' ? type : undefined }
      } catch (err) {
        // 300: config not found.
        if (err instanceof GrpcAnswerError && err.errorCode === 300) return undefined
        throw configTooLarge(err, 'reading', key, ns)
      }
    },

    async publishConfig (r, ns, key, content, type) {
      const conn = await config.connection(r)
      await call(conn, r, 'ConfigPublishRequest', {
        dataId: key.dataId,
        group: key.group,
        tenant: tenant(ns),
        content,
        casMd5: '',
        additionMap: type === undefined ? {} : { type }
      }).catch((err: unknown) => {
        throw configTooLarge(err, 'publishing', key, ns, Buffer.byteLength(content))
      })
    },

    async removeConfig (r, ns, key) {
      const conn = await config.connection(r)
      await call(conn, r, 'ConfigRemoveRequest', { dataId: key.dataId, group: key.group, tenant: tenant(ns), tag: '' })
    },

    async listenConfigs (r, ns, keys, timeoutMs, signal) {
      const conn = await config.connection(r)
      const wanted = new Set(keys.map((k) => ckey(k.dataId, k.group)))
      // Wait for a push from the moment the listen is sent, so none falls between the two.
      let resolveWait: (keys: ConfigKey[]) => void = () => {}
      const pushed = new Promise<ConfigKey[]>((resolve) => {
        resolveWait = resolve
      })
      const waiter = (key: ConfigKey | undefined): void => {
        if (key === undefined) resolveWait([])
        else if (wanted.has(ckey(key.dataId, key.group))) resolveWait([key])
      }
      configWaiters.add(waiter)
      const timer = setTimeout(() => resolveWait([]), timeoutMs)
      const onAbort = (): void => resolveWait([])
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        const res = await call(conn, r, 'ConfigBatchListenRequest', {
          listen: true,
          configListenContexts: keys.map((k) => ({ dataId: k.dataId, group: k.group, md5: k.md5, tenant: listenTenant(r, ns) }))
        })
        const changed = Array.isArray(res.body.changedConfigs) ? (res.body.changedConfigs as Array<Record<string, unknown>>) : []
        if (changed.length > 0) return changed.map((c) => ({ dataId: String(c.dataId), group: String(c.group) }))
        return await pushed
      } finally {
        configWaiters.delete(waiter)
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      }
    }
  }
  return transport
}

function instanceKeyOf (s: InstanceSpec): string {
  return `${s.group}@@${s.service}#${s.ip}#${s.port}#${s.clusterName}`
}
