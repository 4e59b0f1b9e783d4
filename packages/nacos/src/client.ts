// The Nacos client: one server pool shared by naming and config.
import { join } from 'node:path'
import { ConfigClient } from './config-client.ts'
import type { ClientContext } from './context.ts'
import { NamingClient } from './naming-client.ts'
import { resolveOptions, type NacosClientOptions, type ResolvedOptions } from './options.ts'
import { ServerPool } from './server-pool.ts'
import { snapshotScope, SnapshotStore } from './snapshot.ts'
import type { TransportName } from './transport.ts'

/**
 * A Nacos client: `naming` (register, beat, watch services) and `config` (get, publish, listen)
 * over one pool of servers. Speaks Nacos's gRPC protocol (2.x, 3.x), the HTTP v3 client API (3.x)
 * and HTTP v1 (1.x-3.1), probed per server; logs in with `username`/`password` when given.
 * Creating one opens nothing: the first call does.
 *
 * Options (all durations in milliseconds):
 * - `serverAddr`: `'host:port'`, a comma-separated list or an array (port @default 8848); or
 *   `endpoint`, an address server answering one `ip:port` a line
 * - `namespace` @default `''` (public); `group` @default `'DEFAULT_GROUP'`
 * - `timeoutMs` per request @default 5000; `beatIntervalMs` until the server states its own
 *   @default 5000; `namingPollIntervalMs` @default 10000; `recoveryProbeMs` @default 500
 * - `transport`: `'auto' | 'grpc' | 'http' | 'http-v1' | 'http-v3'` @default 'auto' (gRPC, then
 *   the HTTP v3 client API, then HTTP v1, whichever the server offers first)
 * - `username`/`password`, `accessKey`/`secretKey`: credentials (see `credentialsFromEnv` for
 *   the NACOS_* environment variables)
 * - `appName` @default 'unknown', `labels` @default {}: gRPC connection labels (`AppName`,
 *   `app_<key>`) a Nacos 3.2+ server can match config gray releases on
 * - `namingProtectEmpty`: hold a watched service's last non-empty list against an empty answer
 *   until the server is known to have listed none for `namingRecoveryHoldMs` without a restart
 *   or failure (a server restarted empty), then apply it (its last instance left) @default true
 * - `grpcMaxMessageBytes`: largest gRPC message sent or received @default 10 MiB (Nacos's limit)
 * - `cacheDir`, `loadCacheAtStart` @default false: snapshots for starting while Nacos is down
 * - `logger`: pino-like `{ debug, info, warn, error }` @default silent
 *
 * @example
 * const nacos = new NacosClient({ serverAddr: '127.0.0.1:8848' })
 * await nacos.naming.register('order-service', { ip: '10.0.0.5', port: 3000, metadata: { version: 'v2' } })
 * @throws {NacosError} `FLOWTAG_NACOS_BAD_OPTION` naming the field when an option is invalid
 */
export class NacosClient {
  readonly naming: NamingClient
  readonly config: ConfigClient
  readonly options: Readonly<Omit<ResolvedOptions, 'password' | 'secretKey'>>
  /**
   * This client's cluster and namespace as a relative folder, `<cluster>/<namespace|public>`
   * (see `snapshotScope`): where its snapshots go under `cacheDir`, and a key for other caches
   * that must not mix clusters or namespaces (the preset's RuleSet cache uses it).
   */
  readonly snapshotScope: string
  readonly #pool: ServerPool
  readonly #snapshots: SnapshotStore
  readonly #closing = new AbortController()
  #closed: Promise<void> | undefined

  /** @throws {NacosError} `FLOWTAG_NACOS_BAD_OPTION` naming the field when an option is invalid. */
  constructor (options: NacosClientOptions) {
    const o = resolveOptions(options)
    const { password: _p, secretKey: _s, ...visible } = o
    this.options = Object.freeze(visible)
    this.#pool = new ServerPool(
      { servers: o.serverAddr, endpoint: o.endpoint, endpointRefreshMs: o.endpointRefreshMs, transport: o.transport, namespace: o.namespace, appName: o.appName, labels: o.labels, username: o.username, password: o.password, accessKey: o.accessKey, secretKey: o.secretKey, timeoutMs: o.timeoutMs, grpcMaxMessageBytes: o.grpcMaxMessageBytes, recoveryProbeMs: o.recoveryProbeMs, logger: o.logger },
      this.#closing
    )
    this.snapshotScope = snapshotScope(o, o.namespace)
    this.#snapshots = new SnapshotStore(o.cacheDir === undefined ? undefined : join(o.cacheDir, this.snapshotScope), o.logger)
    const ctx: ClientContext = {
      options: o,
      pool: this.#pool,
      snapshots: this.#snapshots,
      logger: o.logger,
      closing: this.#closing.signal
    }
    this.naming = new NamingClient(ctx)
    this.config = new ConfigClient(ctx)
  }

  /** The folder of this client's disk snapshots (`<cacheDir>/<snapshotScope>`); undefined without `cacheDir`. */
  get snapshotDir (): string | undefined {
    return this.#snapshots.root
  }

  /** The server currently used, and the API it speaks once probed. */
  get server (): { origin: string; transport: TransportName | undefined } {
    return { origin: this.#pool.current?.origin ?? '', transport: this.#pool.transportName }
  }

  /**
   * Called when a server answers again after every server had failed (the first answer after an
   * outage). Returns an unsubscribe function.
   */
  onRecover (listener: () => void): () => void {
    return this.#pool.onRecover(listener)
  }

  /**
   * Resolves once some server answers a guarded read (probing its API and logging in).
   * @throws {NacosError} `FLOWTAG_NACOS_UNREACHABLE` when none answers within `timeoutMs`;
   *   `FLOWTAG_NACOS_AUTH` when the server refuses the call (`reason` `refused` after a refused login)
   */
  async ping (): Promise<void> {
    // A read, not only a login: a Nacos with auth off refuses logins yet serves (as the Java
    // client, flowtag goes on without a token), so only a refused call is an error.
    await this.#pool.exec('ping', async (t, r) => {
      await r.token?.()
      await t.list(r, '', 'flowtag-probe', 'DEFAULT_GROUP', undefined)
    })
  }

  /** Ends every timer, poll, socket and UDP port; idempotent. Does not deregister instances: do that first. */
  close (): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort()
      await Promise.allSettled([this.naming.close(), this.config.close()])
      await this.#pool.close()
      await this.#snapshots.flush()
    })()
    return this.#closed
  }
}
