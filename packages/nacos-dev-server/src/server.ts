import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Auth } from './auth.ts'
import { configV1, configV3 } from './config-api.ts'
import { ConfigStore } from './config-store.ts'
import { GrpcServer } from './grpc-server.ts'
import { HttpAnswer } from './errors.ts'
import { parseParams, readBody, send, text, type Call, type Handler, type Reply } from './http.ts'
import { LongPolls } from './long-poll.ts'
import { namingV1, namingV3, v3Error } from './naming-api.ts'
import { NamingStore } from './naming-store.ts'
import { resolveOptions, type CompatMode, type DevServerOptions } from './options.ts'
import { BadParam } from './params.ts'
import { UdpPusher } from './udp-push.ts'

export interface NacosDevServer {
  /** Base URL, e.g. `http://127.0.0.1:8848` (the API lives under `/nacos`). */
  url: string
  /** `host:port`, the form Nacos clients take as a server address. */
  address: string
  port: number
  /** The gRPC client port (HTTP port + 1000 unless `grpcPort` says); undefined with `grpc: false`. */
  grpcPort: number | undefined
  /** The Nacos generation it behaves as. */
  compat: CompatMode
  /** The user that can log in (given, or the default of `compat: '3.3'`); undefined without one. */
  auth: { username: string; password: string } | undefined
  close(): Promise<void>
}

const GRPC_OFFSET = 1000

// Paths answered without a token even when auth is on, as Nacos does.
const OPEN_PATHS = new Set([
  '/nacos/v1/auth/login',
  '/nacos/v1/auth/users/login',
  '/nacos/v3/auth/user/login',
  '/nacos/v1/ns/operator/metrics'
])

// What Nacos 3.2+ keeps of `/v1` (the rest of v1 and all of v2 went to a separate adapter): the
// login, under both paths of its one handler (the 2.x Java client logs in at /v1/auth/users/login),
// and the metrics probe.
const KEPT_ON_32 = new Set(['POST /nacos/v1/auth/login', 'POST /nacos/v1/auth/users/login', 'GET /nacos/v1/ns/operator/metrics'])

/** Whether a route exists on the generation `compat` reproduces. */
function served (compat: CompatMode, route: string): boolean {
  const path = route.slice(route.indexOf(' ') + 1)
  if (compat === '2.5') return !path.startsWith('/nacos/v3/')
  if (compat === '3.3') return KEPT_ON_32.has(route) || !/^\/nacos\/v[12]\//.test(path)
  return true
}

/**
 * Start an embedded Nacos-compatible server (naming and config over HTTP v1, the v3 client API
 * and gRPC, auth, UDP push, config long polling) on loopback, for local work and tests. Resolves
 * once listening; `close()` (idempotent) stops it and every timer.
 *
 * Options (durations in milliseconds):
 * - `port` (0 picks a free one) @default 8848; `host` @default '127.0.0.1'
 * - `compat`: `'2.5' | '3.1' | '3.3'`, the Nacos generation a client sees @default '3.1'
 *   (2.5: no v3 API; 3.1: v1 + v3 + gRPC + UDP; 3.3: no v1/v2 but login and metrics, no UDP, auth on)
 * - `grpc` @default true; `grpcPort` @default HTTP port + 1000 (0: any free port)
 * - `auth`: `{ username, password, tokenTtlSeconds? (@default 18000), enabled? (@default true) }` or
 *   `false` @default off, but `{ username: 'nacos', password: 'nacos' }` with `compat: '3.3'`
 * - `heartbeat`: `{ intervalMs @default 5000, timeoutMs @default 15000, deleteTimeoutMs @default 30000, checkIntervalMs @default 5000 }`
 * - `push`: `{ delayMs @default 500, ackTimeoutMs @default 10000, subscriberTtlMs @default 30000 }`
 * - `longPollMinMs` @default 10000; `cacheMillis` @default 10000; `maxBodyBytes` @default 10 MiB
 * - `maxFormBytes` @default 2 MiB; `configMaxContent` @default 10 MiB; `grpcMaxMessageBytes` @default 10 MiB (Nacos's sizes)
 * - `dataFile`: a JSON file keeping configs across restarts @default none; `log`: `(line) => void` @default silent
 *
 * @example
 * const nacos = await startNacosDevServer({ port: 0 })
 * // nacos.address is 'host:port' for a client's serverAddr
 * @throws {DevServerError} `FLOWTAG_DEVSERVER_BAD_OPTION` naming the field; `FLOWTAG_DEVSERVER_DATA_FILE`
 *   when the data file cannot be read or is not JSON; the listen error (e.g. `EADDRINUSE`)
 */
export async function startNacosDevServer (options: DevServerOptions = {}): Promise<NacosDevServer> {
  const opts = resolveOptions(options)
  const log = opts.log ?? (() => {})
  const naming = new NamingStore(opts.heartbeat)
  const configs = new ConfigStore(opts.dataFile)
  const polls = new LongPolls(configs)
  const pusher = new UdpPusher(opts.push, ({ namespaceId, service, clusters }) => ({
    name: service,
    clusters: clusters.join(','),
    cacheMillis: opts.cacheMillis,
    hosts: naming.hosts(namespaceId, service, clusters, false),
    lastRefTime: Date.now(),
    checksum: '',
    allIPs: false,
    reachProtectionThreshold: false,
    valid: true
  }))
  naming.on('change', (ns, service) => pusher.changed(ns, service))
  const auth = opts.auth === undefined ? undefined : new Auth(opts.auth)

  const routes = new Map<string, { handler: Handler; v3: boolean }>()
  const add = (table: Record<string, Handler>, v3: boolean) => {
    for (const [k, handler] of Object.entries(table)) routes.set(k, { handler, v3 })
  }
  add(namingV1({ store: naming, pusher, opts }), false)
  add(configV1({ store: configs, polls, opts }), false)
  add(namingV3({ store: naming, pusher, opts }), true)
  add(configV3({ store: configs, polls, opts }), true)
  const login: Handler = (call) => {
    if (auth === undefined) throw new HttpAnswer(403, 'user not found!')
    return auth.login(call)
  }
  for (const p of ['/nacos/v1/auth/login', '/nacos/v1/auth/users/login', '/nacos/v3/auth/user/login']) {
    routes.set(`POST ${p}`, { handler: login, v3: false })
  }
  for (const k of [...routes.keys()]) if (!served(opts.compat, k)) routes.delete(k)

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://nacos')
    const body = await readBody(req, opts.maxBodyBytes)
    const call: Call = {
      method: req.method ?? 'GET',
      path: url.pathname.replace(/\/+$/, ''),
      params: parseParams(url, body, req.headers['content-type'], opts.maxFormBytes),
      headers: req.headers,
      remoteAddress: (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
      res
    }
    const route = routes.get(`${call.method} ${call.path}`)
    if (route === undefined) {
      const noSuchApi = opts.compat !== '3.3' && call.path.startsWith('/nacos/v1/ns/')
      send(res, noSuchApi ? text(`no such api:${call.path}`, 501) : text('Not Found', 404))
      return
    }
    if (auth !== undefined && opts.auth?.enabled === true && !OPEN_PATHS.has(call.path)) auth.check(call)
    let reply: Reply | undefined
    try {
      reply = await route.handler(call)
    } catch (err) {
      if (!(err instanceof BadParam)) throw err
      reply = route.v3 ? v3Error(err) : text(err.message, 400)
    }
    if (reply !== undefined) send(res, reply)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpAnswer) {
        if (err.status >= 400) log(`${req.method} ${req.url} -> ${err.status} ${err.body}`)
        send(res, { status: err.status, body: err.body, contentType: err.contentType })
      } else {
        log(`${req.method} ${req.url} -> 500 ${(err as Error).stack ?? String(err)}`)
        send(res, text(`caused: ${(err as Error).message};`, 500))
      }
    })
  })
  server.keepAliveTimeout = 30_000
  server.headersTimeout = 35_000
  // Long polls hold requests for 30 s; Node's default request timeout must not cut them.
  server.requestTimeout = 0

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, opts.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  let grpcServer: GrpcServer | undefined
  let grpcPort: number | undefined
  for (let attempt = 0; ; attempt++) {
    await listen(opts.port)
    if (!opts.grpc) break
    const httpPort = (server.address() as AddressInfo).port
    grpcServer = new GrpcServer({ naming, configs, auth, opts, log })
    try {
      const wanted = opts.grpcPort ?? httpPort + GRPC_OFFSET
      if (wanted > 65535) throw new Error(`gRPC port ${wanted} is out of range`)
      grpcPort = await grpcServer.bind(opts.host, wanted)
      break
    } catch (err) {
      await grpcServer.close()
      grpcServer = undefined
      await new Promise<void>((resolve) => server.close(() => resolve()))
      // A fixed port is the caller's choice: report it. A random one (HTTP + 1000): try another.
      if (opts.port !== 0 || opts.grpcPort !== undefined || attempt >= 20) throw err
    }
  }
  // Nacos 3.2 removed UDP push (and the v1 list that subscribed to it).
  if (opts.compat !== '3.3') await pusher.bind(opts.host)
  const port = (server.address() as AddressInfo).port
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host

  let closing: Promise<void> | undefined
  return {
    url: `http://${host}:${port}`,
    address: `${host}:${port}`,
    port,
    grpcPort,
    compat: opts.compat,
    auth: opts.auth === undefined ? undefined : { username: opts.auth.username, password: opts.auth.password },
    close () {
      closing ??= new Promise<void>((resolve) => {
        void grpcServer?.close()
        naming.close()
        polls.close()
        if (opts.compat !== '3.3') pusher.close()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}
