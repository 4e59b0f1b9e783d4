// Nacos's native gRPC protocol (2.x, 3.x) behind the transport seam: naming (grpc-naming.ts)
// and config (grpc-config.ts), each on a connection of its own, as the official SDKs do (the
// server keeps naming state only for connections labelled `naming`).
import { createGrpcConfig } from './grpc-config.ts'
import { createGrpcNaming } from './grpc-naming.ts'
import type { ServerRequester } from './http.ts'
import type { Logger } from './logger.ts'
import type { Transport } from './transport.ts'

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

/** The connection labels: `AppName` and the application's as `app_<key>`, as Nacos's Java client sends them. */
export function connectionLabels (appName: string | undefined, labels: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = { AppName: appName ?? 'unknown' }
  for (const [k, v] of Object.entries(labels)) out[`app_${k}`] = v
  return out
}

export function createGrpcTransport (opts: GrpcTransportOptions): GrpcTransport {
  const session = {
    namespace: opts.namespace,
    labels: connectionLabels(opts.appName, opts.labels),
    timeoutMs: opts.timeoutMs,
    maxMessageBytes: opts.maxMessageBytes,
    logger: opts.logger,
    reconnect: opts.reconnect
  }
  const naming = createGrpcNaming(session)
  const config = createGrpcConfig(session)

  return {
    name: 'grpc',
    canPush: false,

    async connect (r) {
      await naming.session.connection(r)
    },
    onServiceInfo: naming.onServiceInfo,
    onReconnect: naming.onReconnect,
    setGeneration: config.setGeneration,

    get connects () {
      return naming.session.connects + config.session.connects
    },

    close () {
      naming.session.close()
      config.close()
    },

    register: naming.register,
    batchRegister: naming.batchRegister,
    deregister: naming.deregister,
    update: naming.update,
    beat: naming.beat,
    list: naming.list,
    watch: naming.watch,
    unwatch: naming.unwatch,

    getConfig: config.getConfig,
    publishConfig: config.publishConfig,
    removeConfig: config.removeConfig,
    listenConfigs: config.listenConfigs
  }
}
