// The gRPC side of one client and one module (naming or config): a single live connection at a
// time (to the server the pool chose), and the redo record of what this client holds on the
// server (instances, subscriptions). Ephemeral instances and subscriptions live as long as the
// connection, so after a reconnect, to the same server or the next one, the record is replayed
// before anything else uses the connection: the same instances and subscriptions, once each.
import { GrpcConnection, type PushHandler } from './grpc-connection.ts'
import type { Logger } from './logger.ts'
import type { ServerRequester } from './http.ts'
import type { WireMessage } from './grpc-wire.ts'

export interface SessionOptions {
  module: 'naming' | 'config'
  namespace: string
  /** Extra connection labels. */
  labels: Record<string, string>
  timeoutMs: number
  /** Largest gRPC message sent or received. */
  maxMessageBytes: number
  logger: Logger
  handlers: Record<string, PushHandler>
  /** Replays the redo record on a fresh connection (set by the transport). */
  redo: (conn: GrpcConnection, r: ServerRequester) => Promise<void>
  /** Asks the pool to connect again (it rotates servers); called with back-off while the session holds state. */
  reconnect: () => Promise<void>
  /** Whether the session holds anything a lost connection must restore. */
  holdsState: () => boolean
  /** Called after every lost connection (config listeners wake up). */
  onLost?: () => void
}

/** What the naming and the config halves of the transport give their session alike. */
export type SessionBase = Pick<SessionOptions, 'namespace' | 'labels' | 'timeoutMs' | 'maxMessageBytes' | 'logger' | 'reconnect'>

const BACKOFF_MIN_MS = 100
const BACKOFF_MAX_MS = 5000

export class GrpcSession {
  #conn: GrpcConnection | undefined
  #opening: Promise<GrpcConnection> | undefined
  #openingFor = ''
  #retry: NodeJS.Timeout | undefined
  #failures = 0
  #closed = false
  /** Connections set up so far (1 = never lost one). */
  connects = 0
  readonly #opts: SessionOptions

  constructor (opts: SessionOptions) {
    this.#opts = opts
  }

  /** The live connection to `server`, opened (and the redo record replayed) when needed. */
  async connection (r: ServerRequester): Promise<GrpcConnection> {
    const server = r.server
    const origin = `${server.host}:${server.port}`
    const live = this.#conn
    if (live !== undefined && !live.closed && live.server === origin) return live
    if (this.#opening !== undefined && this.#openingFor === origin) return this.#opening
    this.#openingFor = origin
    const opening = this.#open(r).finally(() => {
      if (this.#opening === opening) this.#opening = undefined
    })
    this.#opening = opening
    return opening
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#retry)
    const conn = this.#conn
    this.#conn = undefined
    conn?.close()
  }

  async #open (r: ServerRequester): Promise<GrpcConnection> {
    const server = r.server
    const previous = this.#conn
    this.#conn = undefined
    // One connection at a time: instances registered on two would be listed twice in a cluster.
    previous?.close('switching server')
    const conn: GrpcConnection = new GrpcConnection({
      host: server.host,
      port: server.port,
      module: this.#opts.module,
      namespace: this.#opts.namespace,
      labels: this.#opts.labels,
      timeoutMs: this.#opts.timeoutMs,
      maxMessageBytes: this.#opts.maxMessageBytes,
      logger: this.#opts.logger,
      handlers: {
        ...this.#opts.handlers,
        // The server asks us to move (it is shutting down or rebalancing): answer, then reconnect.
        ConnectResetRequest: () => {
          setImmediate(() => conn.close('the server asked for a reset'))
          return {}
        }
      },
      onClose: (why) => this.#lost(conn, why)
    })
    try {
      await conn.open()
      await this.#opts.redo(conn, r)
    } catch (err) {
      conn.close('set-up failed')
      throw err
    }
    if (this.#closed) {
      conn.close()
      throw new Error('closed')
    }
    this.#conn = conn
    this.#failures = 0
    this.connects++
    this.#opts.logger.info({ server: conn.origin, module: this.#opts.module, connectionId: conn.connectionId, connects: this.connects }, 'nacos grpc connected')
    return conn
  }

  #lost (conn: GrpcConnection, why: string): void {
    if (this.#conn !== conn) return
    this.#conn = undefined
    if (this.#closed) return
    this.#opts.logger.warn({ server: conn.origin, module: this.#opts.module, why }, 'nacos grpc connection lost')
    this.#opts.onLost?.()
    this.#scheduleReconnect()
  }

  #scheduleReconnect (): void {
    if (this.#closed || this.#retry !== undefined || !this.#opts.holdsState()) return
    const wait = Math.min(BACKOFF_MIN_MS * 2 ** Math.min(this.#failures, 6), BACKOFF_MAX_MS)
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.#closed || (this.#conn !== undefined && !this.#conn.closed)) return
      this.#opts.reconnect().then(
        () => {
          this.#failures = 0
        },
        (err: unknown) => {
          this.#failures++
          this.#opts.logger.debug({ module: this.#opts.module, err }, 'nacos grpc reconnect failed')
          this.#scheduleReconnect()
        }
      )
    }, wait)
  }
}

export type { WireMessage }
