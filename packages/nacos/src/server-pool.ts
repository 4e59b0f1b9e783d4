// The servers of one cluster: which API each speaks (probed once, remembered; gRPC, then the HTTP
// v3 client API, then v1 under 'auto'), and rotation to the next server on connection errors and 5xx. Logins live in auth.ts. When every server has failed, a
// light probe runs until one answers again, and the first answer is announced (onRecover) so
// naming and config can catch up at once instead of waiting out their back-offs.
import { Authenticator } from './auth.ts'
import { authError, NacosAuthError, NacosError, errorCodes, type NacosErrorCode } from './errors.ts'
import { closedError, HttpClient, isRetryable, type RawResponse, type RequestSpec, type ServerRequester } from './http.ts'
import type { Logger } from './logger.ts'
import { parseAddress, type ServerAddress } from './options.ts'
import { sign } from './sign.ts'
import { httpError } from './transport.ts'
import type { Transport, TransportName } from './transport.ts'
import { ConnectionLostError } from './grpc-connection.ts'
import { createGrpcTransport, type GrpcTransport } from './transport-grpc.ts'
import { httpV1 } from './transport-v1.ts'
import { httpV3, isWrapped } from './transport-v3.ts'

/**
 * `auto`: gRPC when the server offers it, else HTTP (the v3 client API, then v1); `http`: HTTP
 * only (v1, then v3); the others force one API.
 */
export type TransportChoice = 'auto' | 'http' | TransportName

export interface PoolOptions {
  /** A fixed list, or an address server to fetch it from. */
  servers: ServerAddress[] | undefined
  endpoint: ServerAddress | undefined
  endpointRefreshMs: number
  transport: TransportChoice
  namespace: string
  /** gRPC connection labels: `AppName` and the application's (`app_<key>`). */
  appName?: string | undefined
  labels?: Record<string, string>
  username: string | undefined
  password: string | undefined
  accessKey: string | undefined
  secretKey: string | undefined
  timeoutMs: number
  /** Largest gRPC message sent or received. */
  grpcMaxMessageBytes: number
  /** Probe pace while no server answers. */
  recoveryProbeMs: number
  logger: Logger
}

interface ServerState {
  address: ServerAddress
  transport: Transport | undefined
}

export class ServerPool {
  #servers: ServerState[]
  #listFetchedAt = 0
  #listing: Promise<void> | undefined
  readonly #http: HttpClient
  readonly #opts: PoolOptions
  readonly #closing: AbortController
  #current = 0
  /** No server answered the last call; a probe runs until one does. */
  #down = false
  #probeTimer: NodeJS.Timeout | undefined
  #recoveries = 0
  #troubleAt = 0
  readonly #onRecover = new Set<() => void>()
  readonly #auth: Authenticator | undefined
  /** Created once (its sessions and redo record are per client, not per server). */
  readonly #grpc: GrpcTransport | undefined

  constructor (opts: PoolOptions, closing: AbortController) {
    this.#opts = opts
    this.#closing = closing
    this.#http = new HttpClient(opts.timeoutMs, closing.signal)
    this.#servers = (opts.servers ?? []).map(newState)
    // Start at a random server, as the Java and Go SDKs do: the clients of a cluster spread over
    // its nodes, so one node's death does not move every connection at once.
    this.#current = Math.floor(Math.random() * this.#servers.length)
    this.#auth = opts.username === undefined || opts.password === undefined ? undefined : new Authenticator(this.#http, opts.username, opts.password, opts.logger)
    this.#grpc =
      opts.transport === 'auto' || opts.transport === 'grpc'
        ? createGrpcTransport({
          namespace: opts.namespace,
          appName: opts.appName,
          labels: opts.labels ?? {},
          timeoutMs: opts.timeoutMs,
          maxMessageBytes: opts.grpcMaxMessageBytes,
          logger: opts.logger,
          reconnect: () => this.exec('grpc reconnect', async (t, r) => (t as GrpcTransport).connect?.(r))
        })
        : undefined
  }

  /** The gRPC transport, when the options allow it (for push subscriptions and figures). */
  get grpc (): GrpcTransport | undefined {
    return this.#grpc
  }

  get closed (): boolean {
    return this.#closing.signal.aborted
  }

  /** The server currently preferred (for logs and tests); undefined before an endpoint answered. */
  get current (): ServerAddress | undefined {
    return this.#servers[this.#current]?.address
  }

  /** Every server known now. */
  get servers (): ServerAddress[] {
    return this.#servers.map((s) => s.address)
  }

  /** Whether every server failed the last call (until one answers again). */
  get down (): boolean {
    return this.#down
  }

  /** Times a server answered again after every server had failed. */
  get recoveries (): number {
    return this.#recoveries
  }

  /**
   * When a server last failed a call (a transport failure: connection error, timeout, 5xx, a dead
   * gRPC connection; ms since epoch, 0: never). A refusal or a request's own error (too large,
   * unreadable) does not count: the server answered.
   */
  get troubleAt (): number {
    return this.#troubleAt
  }

  /** Called (asynchronously) with the first answer after every server had failed; returns the remover. */
  onRecover (listener: () => void): () => void {
    this.#onRecover.add(listener)
    return () => this.#onRecover.delete(listener)
  }

  /** The API flavour of the current server, once known. */
  get transportName (): TransportName | undefined {
    return this.#servers[this.#current]?.transport?.name
  }

  /**
   * Run one operation against the current server, moving on to the next one on connection
   * errors and 5xx; rejects with FLOWTAG_NACOS_UNREACHABLE once every server failed.
   */
  async exec<T>(what: string, fn: (t: Transport, r: ServerRequester) => Promise<T>): Promise<T> {
    await this.#refreshList()
    let last: unknown
    const failures: string[] = []
    const n = this.#servers.length
    const start = this.#current
    // A gRPC connection that died under a call (a restart) earns the call one more round: the
    // next attempt connects anew, as the Java client retries a request after a reconnect.
    let rounds = n
    for (let i = 0; i < rounds; i++) {
      if (this.closed) throw closedError()
      const index = (start + i) % n
      const state = this.#servers[index] as ServerState
      try {
        const requester = this.#requester(state)
        const transport = state.transport ?? (await this.#probe(state, requester))
        const out = await fn(transport, requester)
        this.#current = index
        this.#answered()
        return out
      } catch (err) {
        if (!isRetryable(err) || this.closed) {
          if (answeredWith(err)) this.#answered()
          throw this.#explained(err, state.address)
        }
        last = err
        if (err instanceof ConnectionLostError && rounds === n) rounds = 2 * n
        this.#troubleAt = Date.now()
        failures.push((err as Error).message)
        // A server that went away may come back as another version: probe it again then.
        if (this.#opts.transport === 'auto' || this.#opts.transport === 'http') state.transport = undefined
        if (n > 1) this.#opts.logger.warn({ server: state.address.origin, err }, 'nacos server failed, trying the next')
      }
    }
    this.#markDown()
    throw new NacosError(errorCodes.UNREACHABLE, `no Nacos server reachable for ${what}: ${failures.join('; ')}`, { cause: last })
  }

  /**
   * A refusal (FLOWTAG_NACOS_AUTH) said once with which credential is missing or refused, and where
   * it is set: a call refused after a refused login is that login's error.
   */
  #explained (err: unknown, server: ServerAddress): unknown {
    if (!(err instanceof NacosError) || err.code !== errorCodes.AUTH || err instanceof NacosAuthError) return err
    const refused = this.#auth?.refusal(server)
    if (refused !== undefined) return refused
    return authError(server.origin, err.message, this.#opts.username, this.#opts.namespace, err, err.statusCode ?? 403)
  }

  async close (): Promise<void> {
    clearTimeout(this.#probeTimer)
    this.#grpc?.close()
    await this.#http.close()
  }

  #markDown (): void {
    if (this.#down || this.closed) return
    this.#down = true
    this.#opts.logger.warn({ servers: this.servers.map((s) => s.origin), probeMs: this.#opts.recoveryProbeMs }, 'nacos unreachable, probing until it answers')
    this.#scheduleProbe()
  }

  // Beats and polls back off while Nacos is down; this cheap call notices its return at a fixed pace.
  #scheduleProbe (): void {
    if (!this.#down || this.closed) return
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined
      this.exec('recovery probe', (t, r) => t.list(r, '', 'flowtag-probe', 'DEFAULT_GROUP', undefined))
        .catch(() => {})
        .finally(() => this.#scheduleProbe())
    }, this.#opts.recoveryProbeMs)
    // The probe alone does not keep a process alive; beats, polls and listeners do.
    this.#probeTimer.unref()
  }

  #answered (): void {
    if (!this.#down) return
    this.#down = false
    this.#recoveries++
    clearTimeout(this.#probeTimer)
    this.#probeTimer = undefined
    this.#opts.logger.info({ server: this.current?.origin }, 'nacos answers again')
    queueMicrotask(() => {
      for (const listener of this.#onRecover) {
        try {
          listener()
        } catch (err) {
          this.#opts.logger.error({ err }, 'nacos recovery listener threw')
        }
      }
    })
  }

  /** With an endpoint: fetch the list when there is none, else refresh it in the background when stale. */
  async #refreshList (): Promise<void> {
    const endpoint = this.#opts.endpoint
    if (endpoint === undefined || Date.now() - this.#listFetchedAt < this.#opts.endpointRefreshMs) return
    this.#listing ??= this.#fetchList(endpoint).finally(() => {
      this.#listing = undefined
    })
    if (this.#servers.length === 0) await this.#listing
  }

  async #fetchList (endpoint: ServerAddress): Promise<void> {
    try {
      const res = await this.#http.send(endpoint, { method: 'GET', path: '/nacos/serverlist' })
      if (res.status !== 200) throw new NacosError(errorCodes.UNREACHABLE, `address server ${endpoint.origin} answered ${res.status}`)
      const addrs = res.body
        .split(/\r?\n/)
        .map((line) => parseAddress(line))
        .filter((a): a is ServerAddress => a !== undefined)
      if (addrs.length === 0) throw new NacosError(errorCodes.UNREACHABLE, `address server ${endpoint.origin} listed no servers`)
      const known = new Map(this.#servers.map((s) => [s.address.origin, s]))
      const current = this.current?.origin
      this.#servers = addrs.map((a) => known.get(a.origin) ?? newState(a))
      const kept = this.#servers.findIndex((s) => s.address.origin === current)
      this.#current = kept === -1 ? Math.floor(Math.random() * this.#servers.length) : kept
      this.#listFetchedAt = Date.now()
    } catch (err) {
      // Keep the last list; only a client that never had one fails.
      if (this.#servers.length === 0) throw err
      this.#opts.logger.warn({ endpoint: endpoint.origin, err }, 'nacos address server failed, keeping the last list')
      this.#listFetchedAt = Date.now()
    }
  }

  #requester (state: ServerState): ServerRequester {
    const auth = this.#auth
    const server = state.address
    return {
      server,
      request: async (input: RequestSpec): Promise<RawResponse> => {
        const spec = this.#signed(input)
        if (auth === undefined) return this.#http.send(server, spec)
        let res = await this.#http.send(server, spec, tokenHeader(await auth.token(server)))
        if (res.status === 403) {
          // Token expired or revoked server-side: log in once more and retry once.
          auth.drop(server)
          res = await this.#http.send(server, spec, tokenHeader(await auth.token(server)))
        }
        return res
      },
      ...(auth === undefined ? {} : { token: () => auth.token(server), dropToken: () => auth.drop(server) })
    }
  }

  #signed (spec: RequestSpec): RequestSpec {
    const { accessKey, secretKey } = this.#opts
    if (spec.sign === undefined || accessKey === undefined || secretKey === undefined) return spec
    const s = sign(spec.sign, accessKey, secretKey)
    return { ...spec, headers: { ...spec.headers, ...s.headers }, query: { ...spec.query, ...s.query } }
  }

  async #probe (state: ServerState, r: ServerRequester): Promise<Transport> {
    const choice = this.#opts.transport
    if (choice === 'http-v1') return (state.transport = httpV1)
    if (choice === 'http-v3') return (state.transport = httpV3)
    const grpc = this.#grpc
    if (grpc !== undefined) {
      try {
        // Logs in first (a gRPC set-up needs no token; a login that gets no answer shows here);
        // the generation is known before the connection's redo (its config listens need it).
        await r.token?.()
        grpc.setGeneration(`${state.address.host}:${state.address.port}`, (await generationOf(r)) ?? 2)
        await grpc.connect(r)
        return (state.transport = grpc)
      } catch (err) {
        if (choice === 'grpc' || (err as NacosError).code === errorCodes.AUTH) throw err
        this.#opts.logger.debug({ server: state.address.origin, err }, 'nacos grpc not offered, using HTTP')
      }
    }
    // 'auto' asks for the API of today first (v3: the only one on 3.2+); 'http' keeps its v1 first
    // (where both exist, 3.0/3.1, v1 has UDP push and config long polling). A missing API is a
    // 404/410/501 answer, never an error: the next one is tried.
    const order: Array<[Transport, string]> = choice === 'auto'
      ? [[httpV3, V3_PROBE], [httpV1, V1_PROBE]]
      : [[httpV1, V1_PROBE], [httpV3, V3_PROBE]]
    const statuses: number[] = []
    for (const [transport, path] of order) {
      const res = await probeRequest(state, r, { method: 'GET', path, query: PROBE_QUERY })
      if (res.status === 403) throw httpError(res, 'probe')
      if (offers(transport, res)) return (state.transport = transport)
      statuses.push(res.status)
    }
    throw new NacosError(errorCodes.UNSUPPORTED, `${state.address.origin} speaks neither the HTTP v1 nor the v3 client API (${statuses.join('/')})`)
  }
}

const PROBE_QUERY = { serviceName: 'flowtag-probe', groupName: 'DEFAULT_GROUP' }
const V1_PROBE = '/nacos/v1/ns/instance/list'
const V3_PROBE = '/nacos/v3/client/ns/instance/list'

/**
 * Whether a probe answer shows the API: v1 answers 200; v3 a wrapped `{code: n}`, whatever the
 * status (even "service not exist"); a bare 200 there is some other server's catch-all.
 */
function offers (transport: Transport, res: RawResponse): boolean {
  return transport === httpV3 ? isWrapped(res.body) : res.status === 200
}

/**
 * 3 when the server has the HTTP v3 client API (Nacos 3.x; a 403 there means it exists behind
 * auth), 2 when it answers without it, undefined when it does not answer. The gRPC handshake
 * carries no server version.
 */
async function generationOf (r: ServerRequester): Promise<2 | 3 | undefined> {
  try {
    const res = await r.request({ method: 'GET', path: V3_PROBE, query: PROBE_QUERY })
    return res.status === 403 || offers(httpV3, res) ? 3 : 2
  } catch {
    return undefined
  }
}

/**
 * One request of the API probe. Its failure is the server's, not the probe URL's: any operation
 * (a config get too) probes first, and its error must not read as a failed naming call.
 */
async function probeRequest (state: ServerState, r: ServerRequester, spec: RequestSpec): Promise<RawResponse> {
  try {
    return await r.request(spec)
  } catch (err) {
    if (!isRetryable(err)) throw err
    const e = err as NacosError
    // http.ts words it `<method> <origin><path> failed|timed out: <why>`, or `<origin> answered <status> to ...`
    const why = e.statusCode !== undefined ? `answered ${e.statusCode}` : e.message.replace(`${spec.method} ${state.address.origin}${spec.path} `, '')
    throw new NacosError(errorCodes.UNREACHABLE, `${state.address.origin} did not answer (probing its API): ${why}`, { cause: err, ...(e.statusCode === undefined ? {} : { statusCode: e.statusCode }) })
  }
}

function newState (address: ServerAddress): ServerState {
  return { address, transport: undefined }
}

function tokenHeader (token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { accesstoken: token }
}

const ANSWERED: ReadonlySet<NacosErrorCode> = new Set([errorCodes.HTTP, errorCodes.AUTH, errorCodes.UNSUPPORTED, errorCodes.TOO_LARGE, errorCodes.REQUEST_FAILED])

/** A refusal from a server (4xx, a Nacos error code, an unsupported API) or a request's own failure (too large, unreadable) still shows it is up. */
function answeredWith (err: unknown): boolean {
  return err instanceof NacosError && ANSWERED.has(err.code)
}
