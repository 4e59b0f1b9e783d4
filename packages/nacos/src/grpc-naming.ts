// Naming over gRPC: the instances this client publishes and the services it watches, on the
// naming connection. Ephemeral instances are registered on the connection and live as long as it
// does (no beats); watched services are subscribed and pushed (NotifySubscriberRequest). After a
// reconnect the session replays both (the redo), as the Java SDK's NamingGrpcRedoService does.
import { call, nsName } from './grpc-call.ts'
import type { GrpcConnection } from './grpc-connection.ts'
import { GrpcSession, type SessionBase } from './grpc-session.ts'
import type { ServerRequester } from './http.ts'
import { grouped, toInstance, type InstanceSpec, type ServiceSnapshot, type Transport } from './transport.ts'
import { httpV1 } from './transport-v1.ts'

/** The session's settings (see `connectionLabels` for the labels). */
export type GrpcNamingOptions = SessionBase

/** The naming half of the gRPC transport. */
export interface GrpcNaming extends Pick<Transport, 'register' | 'deregister' | 'update' | 'beat' | 'list'>, Required<Pick<Transport, 'batchRegister' | 'watch' | 'unwatch'>> {
  readonly session: GrpcSession
  onServiceInfo(listener: (raw: Record<string, unknown>, upSince: number) => void): () => void
  onReconnect(listener: () => void): () => void
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

/** The key of a service's entry: one per namespace and grouped service name. */
const entryKey = (ns: string, group: string, service: string): string => `${ns}\u0002${grouped(group, service)}`

function instanceKeyOf (s: InstanceSpec): string {
  return `${s.group}@@${s.service}#${s.ip}#${s.port}#${s.clusterName}`
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

const registerBody = (ns: string, spec: InstanceSpec, type: string) => ({
  namespace: nsName(ns),
  serviceName: spec.service,
  groupName: spec.group,
  type,
  instance: instanceBody(spec)
})

const subscribeBody = (s: Subscription, subscribe: boolean) => ({
  namespace: nsName(s.ns),
  serviceName: s.service,
  groupName: s.group,
  clusters: '',
  subscribe
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

/** Runs one change of an entry after the previous one (a change is a whole new entry sent). */
function serial<T> (p: Published, task: () => Promise<T>): Promise<T> {
  const run = p.queue.then(task, task)
  p.queue = run.catch(() => {})
  return run
}

export function createGrpcNaming (opts: GrpcNamingOptions): GrpcNaming {
  const published = new Map<string, Published>()
  const subscriptions = new Map<string, Subscription>()
  const serviceListeners = new Set<(raw: Record<string, unknown>, upSince: number) => void>()
  const reconnectListeners = new Set<() => void>()

  const emitService = (raw: Record<string, unknown>, conn: GrpcConnection): void => {
    for (const l of serviceListeners) l(raw, conn.upSince)
  }

  function entryOf (ns: string, group: string, service: string): Published {
    const key = entryKey(ns, group, service)
    let p = published.get(key)
    if (p === undefined) {
      p = { ns, service, group, specs: new Map(), batch: false, queue: Promise.resolve() }
      published.set(key, p)
    }
    return p
  }

  function forget (p: Published): void {
    const key = entryKey(p.ns, p.group, p.service)
    if (p.specs.size === 0 && published.get(key) === p) published.delete(key)
  }

  const session = new GrpcSession({
    ...opts,
    module: 'naming',
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
      if (session.connects > 0) for (const l of reconnectListeners) l()
      for (const p of published.values()) if (p.specs.size > 0) await sendEntry(conn, r, p)
      for (const s of subscriptions.values()) {
        const res = await call(conn, r, 'SubscribeServiceRequest', subscribeBody(s, true))
        const info = res.body.serviceInfo
        if (info !== null && typeof info === 'object') emitService({ ...(info as Record<string, unknown>), name: s.service, groupName: s.group }, conn)
      }
    },
    holdsState: () => published.size > 0 || subscriptions.size > 0
  })

  const naming: GrpcNaming = {
    session,

    onServiceInfo (listener) {
      serviceListeners.add(listener)
      return () => serviceListeners.delete(listener)
    },

    onReconnect (listener) {
      reconnectListeners.add(listener)
      return () => reconnectListeners.delete(listener)
    },

    async register (r, ns, inst) {
      // Persistent instances are not connection-scoped: they keep the HTTP API (and its beats-free life).
      if (!inst.ephemeral) return httpV1.register(r, ns, inst)
      const p = entryOf(ns, inst.group, inst.service)
      await serial(p, async () => {
        const conn = await session.connection(r)
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
        const conn = await session.connection(r)
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
        const conn = await session.connection(r)
        // The others of the service stay: they are sent again without it (Nacos drops the whole entry on a deregister).
        await sendEntry(conn, r, p, inst)
      })
    },

    async update (r, ns, inst) {
      if (!inst.ephemeral) return httpV1.update(r, ns, inst)
      // Registering again on the same connection replaces the instance's fields.
      await naming.register(r, ns, inst)
    },

    async beat (r, ns, inst) {
      if (!inst.ephemeral) return httpV1.beat(r, ns, inst, false)
      // The connection keeps ephemeral instances alive; make sure there is one (and it was redone).
      await session.connection(r)
      const p = published.get(entryKey(ns, inst.group, inst.service))
      return { intervalMs: undefined, lightBeatEnabled: false, notFound: p?.specs.has(instanceKeyOf(inst)) !== true }
    },

    async list (r, ns, service, group) {
      const conn = await session.connection(r)
      const res = await call(conn, r, 'ServiceQueryRequest', { namespace: nsName(ns), serviceName: service, groupName: group, cluster: '', healthyOnly: false, udpPort: 0 })
      return parseGrpcServiceInfo((res.body.serviceInfo ?? {}) as Record<string, unknown>, service, group)
    },

    async watch (r, ns, service, group) {
      const s: Subscription = { ns, service, group }
      subscriptions.set(grouped(group, service), s)
      const conn = await session.connection(r)
      const res = await call(conn, r, 'SubscribeServiceRequest', subscribeBody(s, true))
      return parseGrpcServiceInfo((res.body.serviceInfo ?? {}) as Record<string, unknown>, service, group, conn.upSince)
    },

    async unwatch (r, ns, service, group) {
      subscriptions.delete(grouped(group, service))
      const conn = await session.connection(r)
      await call(conn, r, 'SubscribeServiceRequest', subscribeBody({ ns, service, group }, false))
    }
  }
  return naming
}
