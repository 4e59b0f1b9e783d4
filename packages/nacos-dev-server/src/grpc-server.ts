// Nacos's gRPC client protocol on HTTP port + 1000, as Nacos 2.x/3.x serve it: unary
// `/Request/request` and the `/BiRequestStream/requestBiStream` stream on which the server
// pushes NotifySubscriberRequest and ConfigChangeNotifyRequest. A connection is one TCP
// connection (one peer address); instances registered on it live exactly as long as it does.
import * as grpc from '@grpc/grpc-js'
import type { Auth } from './auth.ts'
import { configKey, configTenant, type ConfigStore } from './config-store.ts'
import { biStreamPath, decodePayload, encodePayload, requestPath, type WireMessage } from './grpc-wire.ts'
import { DEFAULT_CLUSTER, DEFAULT_GROUP, DEFAULT_NAMESPACE, groupedName, type NamingStore } from './naming-store.ts'
import type { ResolvedOptions } from './options.ts'

interface Conn {
  id: string
  peer: string
  stream: grpc.ServerDuplexStream<Buffer, Buffer> | undefined
  /**
   * What this connection publishes, per service (`ns\u0002group@@service`): one entry each, as
   * Nacos keeps it (a register or a batch replaces the service's previous one; a deregister
   * removes it whole). Values are the `ip#port#cluster` of the instances.
   */
  published: Map<string, string[]>
  /** `ns\u0002group@@service`. */
  subscriptions: Set<string>
  /**
   * Config keys (configKey(), the namespace normalized) it listens to, each with the namespace
   * id as this connection sent it: its pushes echo that id, because a client matches a push
   * against its own (a 3.x Java client listening in `public` drops a push saying `tenant=`).
   */
  listens: Map<string, string>
  pushId: number
}

interface Deps {
  naming: NamingStore
  configs: ConfigStore
  auth: Auth | undefined
  opts: ResolvedOptions
  log: (line: string) => void
}

const id = (b: Buffer): Buffer => b
const SEP = '\u0002'
type Body = Record<string, unknown>

const str = (v: unknown, def = ''): string => (typeof v === 'string' && v !== '' ? v : def)
const nsOf = (v: unknown): string => str(v, DEFAULT_NAMESPACE)

function answer (type: string, body: Body = {}): WireMessage {
  return { type, headers: {}, body: { resultCode: 200, errorCode: 0, success: true, message: 'success', requestId: '', ...body } }
}
function failure (type: string, errorCode: number, message: string): WireMessage {
  return { type, headers: {}, body: { resultCode: 500, errorCode, success: false, message, requestId: '' } }
}

/** An exception raised in a handler: Nacos answers an ErrorResponse whose resultCode is the error code. */
function raised (errorCode: number, message: string): WireMessage {
  const res = failure('ErrorResponse', errorCode, message)
  res.body.resultCode = errorCode
  return res
}

/** The request types served here, the response class of each handler, and the fields an empty one carries. */
const HANDLERS: Record<string, { response: string; defaults: Body }> = {
  InstanceRequest: { response: 'InstanceResponse', defaults: {} },
  BatchInstanceRequest: { response: 'BatchInstanceResponse', defaults: {} },
  SubscribeServiceRequest: { response: 'SubscribeServiceResponse', defaults: {} },
  ServiceQueryRequest: { response: 'QueryServiceResponse', defaults: {} },
  ConfigQueryRequest: { response: 'ConfigQueryResponse', defaults: { lastModified: 0, beta: false } },
  ConfigPublishRequest: { response: 'ConfigPublishResponse', defaults: {} },
  ConfigRemoveRequest: { response: 'ConfigRemoveResponse', defaults: {} },
  ConfigBatchListenRequest: { response: 'ConfigChangeBatchListenResponse', defaults: { changedConfigs: [] } }
}

export class GrpcServer {
  readonly #server: grpc.Server
  readonly #conns = new Map<string, Conn>()
  readonly #deps: Deps
  #keepAlive: NodeJS.Timeout | undefined
  readonly #pending = new Map<string, NodeJS.Timeout>()

  constructor (deps: Deps) {
    this.#deps = deps
    // Nacos accepts messages up to nacos.remote.server.grpc.sdk.max-inbound-message-size (10 MiB)
    // and sends any size (grpc-java sets no outbound limit); grpc-js would accept only 4 MiB.
    this.#server = new grpc.Server({
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': deps.opts.grpcMaxMessageBytes,
      'grpc.max_send_message_length': -1
    })
    const method = (path: string, stream: boolean) => ({
      path,
      requestStream: stream,
      responseStream: stream,
      requestSerialize: id,
      requestDeserialize: id,
      responseSerialize: id,
      responseDeserialize: id
    })
    this.#server.addService(
      { request: method(requestPath, false), requestBiStream: method(biStreamPath, true) },
      {
        request: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          let res: WireMessage
          try {
            res = this.#request(call.getPeer(), decodePayload(call.request))
          } catch (err) {
            res = failure('ErrorResponse', 500, (err as Error).message)
          }
          cb(null, encodePayload(res))
        },
        requestBiStream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => this.#stream(call)
      }
    )
    deps.naming.on('change', (ns, name) => this.#serviceChanged(ns, name))
    deps.configs.on('change', (key) => this.#configChanged(key))
  }

  /** Binds `host:port`; rejects when the port is taken. */
  bind (host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
      this.#server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err !== null) reject(err)
        else {
          // Instances of live connections never expire: their connection is their heartbeat.
          this.#keepAlive = setInterval(() => this.#beatAll(), Math.max(200, Math.floor(this.#deps.opts.heartbeat.checkIntervalMs / 2))).unref()
          resolve(bound)
        }
      })
    })
  }

  close (): Promise<void> {
    clearInterval(this.#keepAlive)
    for (const t of this.#pending.values()) clearTimeout(t)
    this.#server.forceShutdown()
    for (const conn of [...this.#conns.values()]) this.#drop(conn)
    return Promise.resolve()
  }

  /** Live connections (for tests and the metrics endpoint). */
  get connections (): number {
    return [...this.#conns.values()].filter((c) => c.stream !== undefined).length
  }

  #conn (peer: string): Conn {
    let conn = this.#conns.get(peer)
    if (conn === undefined) {
      const [ip, port] = [peer.slice(0, peer.lastIndexOf(':')).replace(/^\[|\]$/g, ''), peer.slice(peer.lastIndexOf(':') + 1)]
      conn = { id: `${Date.now()}_${ip}_${port}`, peer, stream: undefined, published: new Map(), subscriptions: new Set(), listens: new Map(), pushId: 0 }
      this.#conns.set(peer, conn)
    }
    return conn
  }

  #stream (call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    const peer = call.getPeer()
    const conn = this.#conn(peer)
    call.on('data', (bytes: Buffer) => {
      const msg = decodePayload(bytes)
      if (msg.type !== 'ConnectionSetupRequest') return // acks of our pushes: nothing waits on them
      conn.stream = call
      if (msg.body.abilityTable !== undefined && msg.body.abilityTable !== null) {
        call.write(encodePayload({ type: 'SetupAckRequest', headers: {}, body: { abilityTable: {}, requestId: '', module: 'internal', headers: {} } }))
      }
    })
    const end = (): void => {
      if (this.#conns.get(peer) === conn) this.#drop(conn)
    }
    call.on('end', end)
    call.on('error', end)
    call.on('cancelled', end)
    call.on('close', end)
  }

  /** The connection is gone: its instances, subscriptions and listeners go with it. */
  #drop (conn: Conn): void {
    this.#conns.delete(conn.peer)
    conn.stream = undefined
    for (const key of [...conn.published.keys()]) this.#unpublish(conn, key)
  }

  #beatAll (): void {
    for (const conn of this.#conns.values()) {
      for (const [key, list] of conn.published) {
        const [ns, name] = key.split(SEP) as [string, string]
        for (const ipPortCluster of list) {
          const [ip, port, cluster] = ipPortCluster.split('#') as [string, string, string]
          const instance = this.#deps.naming.find(ns, name, ip, Number(port), cluster)
          if (instance !== undefined) this.#deps.naming.beat(instance, ns)
        }
      }
    }
  }

  #request (peer: string, msg: WireMessage): WireMessage {
    if (msg.type === 'ServerCheckRequest') return answer('ServerCheckResponse', { connectionId: this.#conn(peer).id, supportAbilityNegotiation: true })
    const conn = this.#conns.get(peer)
    if (conn?.stream === undefined) return failure('ErrorResponse', 301, 'Connection is unregistered.')
    if (msg.type === 'HealthCheckRequest') return answer('HealthCheckResponse')
    const handled = HANDLERS[msg.type]
    // Nacos looks the handler up first (302 when there is none), then its auth filter refuses
    // with an empty instance of the handler's response class (resultCode 500, errorCode 403).
    if (handled === undefined) return failure('ErrorResponse', 302, 'RequestHandler Not Found')
    const auth = this.#deps.auth
    if (auth !== undefined && this.#deps.opts.auth?.enabled === true) {
      const refusal = auth.refusal(msg.headers.accessToken ?? msg.headers.accesstoken)
      if (refusal !== undefined) return { type: handled.response, headers: {}, body: { resultCode: 500, errorCode: 403, message: refusal, ...handled.defaults, success: false, requestId: '' } }
    }
    const b = msg.body
    switch (msg.type) {
      case 'InstanceRequest':
        return this.#instance(conn, b)
      case 'BatchInstanceRequest': {
        if (b.type !== 'batchRegisterInstance') return raised(400, `Unsupported request type ${String(b.type)}`)
        const ns = nsOf(b.namespace)
        const name = groupedName(str(b.groupName, DEFAULT_GROUP), str(b.serviceName))
        this.#publish(conn, ns, name, Array.isArray(b.instances) ? (b.instances as Body[]) : [])
        return answer('BatchInstanceResponse', { type: 'batchRegisterInstance' })
      }
      case 'SubscribeServiceRequest': {
        const ns = nsOf(b.namespace)
        const group = str(b.groupName, DEFAULT_GROUP)
        const key = `${ns}${SEP}${groupedName(group, str(b.serviceName))}`
        if (b.subscribe === false) conn.subscriptions.delete(key)
        else conn.subscriptions.add(key)
        return answer('SubscribeServiceResponse', { serviceInfo: this.#serviceInfo(ns, group, str(b.serviceName)) })
      }
      case 'ServiceQueryRequest':
        return answer('QueryServiceResponse', { serviceInfo: this.#serviceInfo(nsOf(b.namespace), str(b.groupName, DEFAULT_GROUP), str(b.serviceName)) })
      case 'ConfigQueryRequest': {
        const item = this.#deps.configs.get(this.#tenant(b.tenant), str(b.group, DEFAULT_GROUP), str(b.dataId))
        if (item === undefined) return { ...failure('ConfigQueryResponse', 300, 'config data not exist'), type: 'ConfigQueryResponse' }
        return answer('ConfigQueryResponse', { content: item.content, md5: item.md5, contentType: item.type, lastModified: item.lastModified, encryptedDataKey: '', beta: false })
      }
      case 'ConfigPublishRequest': {
        const additions = (b.additionMap ?? {}) as Record<string, unknown>
        const content = str(b.content)
        if (content.trim() === '' || str(b.dataId) === '') return failure('ConfigPublishResponse', 400, 'dataId and content are required')
        const max = this.#deps.opts.configMaxContent
        if (content.length > max) return failure('ConfigPublishResponse', 400, `invalid content, over ${max}`)
        this.#deps.configs.publish(this.#tenant(b.tenant), str(b.group, DEFAULT_GROUP), str(b.dataId), content, str(additions.type, 'text'))
        return answer('ConfigPublishResponse')
      }
      case 'ConfigRemoveRequest':
        this.#deps.configs.remove(this.#tenant(b.tenant), str(b.group, DEFAULT_GROUP), str(b.dataId))
        return answer('ConfigRemoveResponse')
      case 'ConfigBatchListenRequest': {
        const changed: Body[] = []
        for (const c of Array.isArray(b.configListenContexts) ? (b.configListenContexts as Body[]) : []) {
          const key = configKey(this.#tenant(c.tenant), str(c.group, DEFAULT_GROUP), str(c.dataId))
          if (b.listen === false) {
            conn.listens.delete(key)
            continue
          }
          const asSent = str(c.tenant)
          conn.listens.set(key, asSent)
          if (this.#deps.configs.md5Of(key) !== str(c.md5)) changed.push({ dataId: c.dataId, group: c.group, tenant: asSent })
        }
        return answer('ConfigChangeBatchListenResponse', { changedConfigs: changed })
      }
      default:
        return failure('ErrorResponse', 302, 'RequestHandler Not Found')
    }
  }

  #tenant (sent: unknown): string {
    return configTenant(str(sent), this.#deps.opts.compat)
  }

  #instance (conn: Conn, b: Body): WireMessage {
    const ns = nsOf(b.namespace)
    const name = groupedName(str(b.groupName, DEFAULT_GROUP), str(b.serviceName))
    const i = (b.instance ?? {}) as Body
    if (b.type === 'registerInstance') {
      this.#publish(conn, ns, name, [i])
    } else if (b.type === 'deregisterInstance') {
      // Whatever instance it names, Nacos drops the connection's whole entry for the service.
      this.#unpublish(conn, `${ns}${SEP}${name}`)
    } else {
      return raised(400, `Unsupported request type ${String(b.type)}`)
    }
    return answer('InstanceResponse', { type: b.type })
  }

  /** The connection's entry for the service becomes `list` (one instance or a batch); instances it no longer names leave. */
  #publish (conn: Conn, ns: string, name: string, list: Body[]): void {
    const key = `${ns}${SEP}${name}`
    const next: string[] = []
    for (const i of list) {
      const cluster = str(i.clusterName, DEFAULT_CLUSTER)
      const metadata: Record<string, string> = {}
      for (const [k, v] of Object.entries((i.metadata ?? {}) as Body)) metadata[k] = String(v)
      this.#deps.naming.register(ns, name, {
        ip: String(i.ip),
        port: Number(i.port),
        clusterName: cluster,
        weight: Number(i.weight ?? 1),
        healthy: i.healthy !== false,
        enabled: i.enabled !== false,
        ephemeral: true,
        metadata
      })
      const id = `${String(i.ip)}#${Number(i.port)}#${cluster}`
      if (!next.includes(id)) next.push(id)
    }
    for (const id of conn.published.get(key) ?? []) if (!next.includes(id)) this.#deregisterId(ns, name, id)
    conn.published.set(key, next)
  }

  #unpublish (conn: Conn, key: string): void {
    const list = conn.published.get(key)
    if (list === undefined) return
    conn.published.delete(key)
    const [ns, name] = key.split(SEP) as [string, string]
    for (const id of list) this.#deregisterId(ns, name, id)
  }

  #deregisterId (ns: string, name: string, ipPortCluster: string): void {
    const [ip, port, cluster] = ipPortCluster.split('#') as [string, string, string]
    this.#deps.naming.deregister(ns, name, ip, Number(port), cluster)
  }

  #serviceInfo (ns: string, group: string, service: string): Body {
    return {
      name: service,
      groupName: group,
      clusters: '',
      cacheMillis: this.#deps.opts.cacheMillis,
      hosts: this.#deps.naming.hosts(ns, groupedName(group, service), [], false),
      lastRefTime: Date.now(),
      checksum: '',
      allIPs: false,
      reachProtectionThreshold: false,
      valid: true
    }
  }

  // Like Nacos's PushDelayTask (and the UDP pusher here): changes within the push delay merge into one push.
  #serviceChanged (ns: string, name: string): void {
    const key = `${ns}${SEP}${name}`
    if (this.#pending.has(key)) return
    this.#pending.set(
      key,
      setTimeout(() => {
        this.#pending.delete(key)
        const at = name.indexOf('@@')
        const info = this.#serviceInfo(ns, name.slice(0, at), name.slice(at + 2))
        for (const conn of this.#conns.values()) if (conn.subscriptions.has(key)) this.#push(conn, 'NotifySubscriberRequest', { serviceInfo: info, module: 'naming' })
      }, this.#deps.opts.push.delayMs)
    )
  }

  #configChanged (key: string): void {
    const [, group, dataId] = key.split(SEP) as [string, string, string]
    for (const conn of this.#conns.values()) {
      const tenant = conn.listens.get(key)
      if (tenant !== undefined) this.#push(conn, 'ConfigChangeNotifyRequest', { dataId, group, tenant, module: 'config' })
    }
  }

  #push (conn: Conn, type: string, body: Body): void {
    if (conn.stream === undefined) return
    try {
      conn.stream.write(encodePayload({ type, headers: {}, body: { ...body, requestId: String(++conn.pushId), headers: {} } }))
    } catch (err) {
      this.#deps.log(`grpc push to ${conn.id} failed: ${(err as Error).message}`)
    }
  }
}
