// The Nacos client: one server pool shared by naming and config.
import { ConfigClient } from './config-client.ts'
import type { ClientContext } from './context.ts'
import { NamingClient } from './naming-client.ts'
import { resolveOptions, type NacosClientOptions, type ResolvedOptions } from './options.ts'
import { ServerPool } from './server-pool.ts'
import { SnapshotStore } from './snapshot.ts'
import type { TransportName } from './transport.ts'

export class NacosClient {
  readonly naming: NamingClient
  readonly config: ConfigClient
  readonly options: Readonly<Omit<ResolvedOptions, 'password' | 'secretKey'>>
  readonly #pool: ServerPool
  readonly #snapshots: SnapshotStore
  readonly #closing = new AbortController()
  #closed: Promise<void> | undefined

  /** Throws FLOWTAG_NACOS_BAD_OPTION naming the field when an option is invalid. */
  constructor(options: NacosClientOptions) {
    const o = resolveOptions(options)
    const { password: _p, secretKey: _s, ...visible } = o
    this.options = Object.freeze(visible)
    this.#pool = new ServerPool(
      { servers: o.serverAddr, endpoint: o.endpoint, endpointRefreshMs: o.endpointRefreshMs, transport: o.transport, username: o.username, password: o.password, accessKey: o.accessKey, secretKey: o.secretKey, timeoutMs: o.timeoutMs, recoveryProbeMs: o.recoveryProbeMs, logger: o.logger },
      this.#closing
    )
    this.#snapshots = new SnapshotStore(o.cacheDir, o.namespace, o.logger)
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

  /** The server currently used, and the API it speaks once probed. */
  get server(): { origin: string; transport: TransportName | undefined } {
    return { origin: this.#pool.current?.origin ?? '', transport: this.#pool.transportName }
  }

  /**
   * Called when a server answers again after every server had failed (the first answer after an
   * outage). Returns an unsubscribe function.
   */
  onRecover(listener: () => void): () => void {
    return this.#pool.onRecover(listener)
  }

  /** Resolves once some server answers (probing its API and logging in); FLOWTAG_NACOS_UNREACHABLE otherwise. */
  async ping(): Promise<void> {
    await this.#pool.exec('ping', async () => undefined)
  }

  /** Ends every timer, poll, socket and UDP port. Does not deregister instances: do that first. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort()
      await Promise.allSettled([this.naming.close(), this.config.close()])
      await this.#pool.close()
      await this.#snapshots.flush()
    })()
    return this.#closed
  }
}
