// @flowtag/service/express: the preset for Express. `app.use(ft)` tags requests and answers the
// probes; `ft.listen(app, { port })` (or `ft.attach(server)`) registers once listening; a signal
// (or `ft.close()`) deregisters, drains, stops the server and closes what the service opened.
import { createServer, STATUS_CODES, type RequestListener, type Server } from 'node:http'
import { FALLBACK_HEADER, type FlowContext } from '@flowtag/context'
import { fallbackOf } from '@flowtag/context/internals'
import { ExpressFacts } from '@flowtag/context/express'
import { FlowTagError, describeBadOption } from '@flowtag/errors'
import type { NextFunction, Request, Response } from 'express'
import { z } from 'zod'
import { errorCodes, PACKAGE } from './errors.ts'
import type { FlowTagServiceOptions } from './options.ts'
import { FlowTagService } from './service.ts'
import { PROMETHEUS_CONTENT_TYPE } from './prometheus.ts'
import { consoleLogger } from './console-logger.ts'
import { BodyCapture, bodyBytes, type ShadowAnswer } from './mirror.ts'

declare global {
  // Express's own augmentation point (@types/express-serve-static-core merges it into Request)
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** This request's flow: its lane (`flow.tag`), why (`flow.decision`), baggage. */
      flow: FlowContext
    }
  }
}

const signalsSchema = z.union([z.literal(false), z.array(z.enum(['SIGTERM', 'SIGINT', 'SIGHUP'])).min(1)], { message: 'false, or a list of SIGTERM, SIGINT, SIGHUP' })
  .default(['SIGTERM', 'SIGINT'])

export type ExpressFlowTagServiceOptions = FlowTagServiceOptions & {
  /**
   * Signals that deregister, drain, stop the server and close (then the signal's default action
   * runs, unless another listener handles it); `false`: call `ft.close()` yourself.
   * @default ['SIGTERM', 'SIGINT']
   */
  signals?: Array<'SIGTERM' | 'SIGINT' | 'SIGHUP'> | false
}

export interface ListenOptions {
  /** @default 0 (any free port) */
  port?: number
  /** @default Node's default: every interface */
  host?: string
}

/** The middleware (`app.use(ft)`) with the service's lifecycle and parts on it. */
export interface FlowTagServiceMiddleware {
  (req: Request, res: Response, next: NextFunction): void
  readonly service: FlowTagService
  /** undici `fetch` in the request's lane: `await ft.fetch('http://user-service/users/1')`. */
  readonly fetch: FlowTagService['fetch']
  readonly dispatcher: FlowTagService['dispatcher']
  readonly rules: FlowTagService['rules']
  readonly nacos: FlowTagService['nacos']
  readonly registration: FlowTagService['registration']
  /**
   * Wait for the rules (and Nacos, with failFast), listen, then register. Resolves with the server.
   * @throws {FlowTagError} `FLOWTAG_SERVICE_CLOSED`, `FLOWTAG_NACOS_UNREACHABLE` (failFast)
   */
  listen(app: RequestListener, options?: ListenOptions): Promise<Server>
  /**
   * Express error middleware: a flowtag error with an HTTP status (a routing failure of `fetch`:
   * no instance, all ejected, unknown service: 503) is answered with that status and
   * `{ statusCode, code, error, message }`, as Fastify answers it; anything else goes on to the
   * next error handler. `listen(app)` mounts it after the app's routes; with `attach()` (or
   * routes added later), `app.use(ft.errorHandler)` after them.
   */
  readonly errorHandler: (err: unknown, req: Request, res: Response, next: NextFunction) => void
  /** Register once `server` listens (now, if it already does); `close()` stops it after draining. */
  attach(server: Server): void
  /** Deregister and keep serving `registration.drainMs`. Idempotent. */
  drain(): Promise<void>
  /** Deregister, drain, stop the servers, then close outbound, rules and the Nacos client. Idempotent. */
  close(): Promise<void>
}

/**
 * Make an Express app lane-aware with one middleware.
 *
 * ```ts
 * const ft = flowTagService({ service: 'user-service', version: 'v2', nacos: { serverAddr: '127.0.0.1:8848' } })
 * app.use(ft)
 * await ft.listen(app, { port: 3000 })
 * ```
 * @throws {FlowTagError} `FLOWTAG_SERVICE_BAD_OPTION` naming the field.
 */
export function flowTagService (options: ExpressFlowTagServiceOptions): FlowTagServiceMiddleware {
  const { signals: rawSignals, ...rest } = (options ?? {}) as ExpressFlowTagServiceOptions
  const parsedSignals = signalsSchema.safeParse(rawSignals)
  if (!parsedSignals.success) {
    const bad = describeBadOption(PACKAGE, parsedSignals.error, { prefix: 'signals', schema: signalsSchema })
    throw new FlowTagError(errorCodes.BAD_OPTION, bad.message, bad)
  }
  const signals = parsedSignals.data
  // Express has no logger of its own: log to the console unless given one (Fastify's presets log through app.log).
  const service = new FlowTagService({ ...rest, logger: rest.logger ?? consoleLogger })
  const servers = new Set<Server>()
  let closed: Promise<void> | undefined

  const middleware = flowTagRequests(service)
  const mounted = new WeakSet<object>()

  const onSignal = (signal: NodeJS.Signals): void => {
    service.logger.info({ signal, service: service.name }, 'flowtag: stopping: deregistering, then draining')
    close().then(() => {
      // Ours was the only listener: let the signal do what it does by default (end the process).
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }, () => {})
  }

  function watchSignals (): void {
    if (signals === false || servers.size > 1) return
    for (const s of signals) process.once(s, onSignal)
  }

  function registerOnListen (server: Server): Promise<void> {
    const start = (): Promise<void> => {
      const address = server.address()
      return service.start(typeof address === 'object' && address !== null ? address : undefined)
    }
    if (server.listening) return start()
    return new Promise((resolve, reject) => {
      server.once('listening', () => { start().then(resolve, reject) })
    })
  }

  function attach (server: Server): void {
    if (closed !== undefined) throw new FlowTagError(errorCodes.CLOSED, `${PACKAGE}: "${service.name}" is closed`)
    servers.add(server)
    watchSignals()
    registerOnListen(server).catch((err: unknown) => service.logger.error({ err, service: service.name }, 'flowtag: registration failed'))
  }

  function errorHandler (err: unknown, _req: Request, res: Response, next: NextFunction): void {
    if (!(err instanceof FlowTagError) || err.statusCode === undefined || res.headersSent) return next(err)
    service.logger.error({ err, code: err.code }, `flowtag: ${err.message}`)
    res.status(err.statusCode).json({ statusCode: err.statusCode, code: err.code, error: STATUS_CODES[err.statusCode], message: err.message })
  }

  async function listen (app: RequestListener, opts: ListenOptions = {}): Promise<Server> {
    if (closed !== undefined) throw new FlowTagError(errorCodes.CLOSED, `${PACKAGE}: "${service.name}" is closed`)
    // After the app's routes (they are defined by now): flowtag's coded errors answer with their status.
    const use = (app as { use?: (fn: typeof errorHandler) => unknown }).use
    if (typeof use === 'function' && !mounted.has(app)) {
      use.call(app, errorHandler)
      mounted.add(app)
    }
    await service.prepare()
    const server = createServer(app)
    servers.add(server)
    watchSignals()
    const registered = registerOnListen(server)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port ?? 0, opts.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    try {
      await registered
    } catch (err) {
      // failFast: do not stay up unregistered
      servers.delete(server)
      await stopServer(server)
      throw err
    }
    return server
  }

  function close (): Promise<void> {
    closed ??= (async () => {
      if (signals !== false) for (const s of signals) process.off(s, onSignal)
      await service.drain()
      await Promise.all([...servers].map(stopServer))
      await service.close()
    })()
    return closed
  }

  return Object.assign(middleware, {
    service,
    fetch: service.fetch,
    dispatcher: service.dispatcher,
    rules: service.rules,
    nacos: service.nacos,
    registration: service.registration,
    errorHandler,
    listen,
    attach,
    drain: () => service.drain(),
    close
  })
}

// Per-response slots of the request half (one property each, no per-request closure): the
// flow the receipt and the metrics read, the start time, and the writeHead the receipt wraps.
const kFlow = Symbol('flowtag.service.flow')
const kStart = Symbol('flowtag.service.start')
const kWriteHead = Symbol('flowtag.service.writeHead')

interface FlowResponse extends Response {
  [kFlow]: FlowContext
  [kStart]: number
  [kWriteHead]: (...args: unknown[]) => Response
}

/**
 * The per-request half of {@link flowTagService}, for a {@link FlowTagService} whose lifecycle
 * (`prepare`, `start`, `drain`, `close`) the caller drives, as a framework over Express does
 * (@flowtag/nestjs): `/health`, `/ready`, tagging (`req.flow`), fallback receipts and metrics.
 * Mount it before the routes; it neither registers, listens nor closes anything.
 */
export function flowTagRequests (service: FlowTagService): (req: Request, res: Response, next: NextFunction) => void {
  const { tagger, healthPath, readyPath, receipts, metrics } = service
  const prometheus = service.prometheus
  // One listener per service, shared by its responses: what a per-request closure held is on the response.
  // (no MeterProvider: nothing would be recorded, so nothing is timed or listened to)
  const onClose = metrics === undefined || !metrics.recording
    ? undefined
    : function flowTagServiceMetrics (this: FlowResponse): void {
      const req = this.req as Request
      const route = (req.route as { path?: unknown } | undefined)?.path
      // Probes and scrapes (metrics.path, metrics.excludeRoutes) are skipped: no lane's traffic.
      metrics.record({
        lane: this[kFlow].tag,
        method: req.method,
        route: typeof route === 'string' ? req.baseUrl + route : undefined,
        path: typeof route === 'string' ? undefined : pathOf(req.originalUrl),
        status: this.writableFinished ? this.statusCode : undefined,
        seconds: (performance.now() - this[kStart]) / 1000
      })
    }
  return function flowTagServiceMiddleware (req: Request, res: Response, next: NextFunction): void {
    const method = req.method
    if (method === 'GET' || method === 'HEAD') {
      // The probes and the scrape are answered here, before any tagging: no lane, no flow, not counted.
      const path = req.path
      if (path === healthPath) {
        res.json({ status: 'ok' })
        return
      }
      if (path === readyPath) {
        const r = service.readiness()
        res.status(r.ready ? 200 : 503).json(r.body)
        return
      }
      if (prometheus !== undefined && path === prometheus.path) {
        prometheus.text().then((text) => { res.type(PROMETHEUS_CONTENT_TYPE).send(text) }, next)
        return
      }
    }
    const flow = tagger.decide(new ExpressFacts(req))
    req.flow = flow
    // pino-http (or any logger on `req.log` with pino's `child`): every log line of the request
    // says which lane it is in, as in the Fastify preset.
    const log = (req as { log?: { child?: (bindings: object) => unknown } }).log
    if (typeof log?.child === 'function') (req as { log?: unknown }).log = log.child({ lane: flow.tag ?? 'none' })
    const slots = res as FlowResponse
    slots[kFlow] = flow
    // Wrapped once per response: mounted twice (or with another wrapper between the two), the
    // first wrapper stays where it is in the chain and reads the latest flow.
    if (receipts && slots[kWriteHead] === undefined) {
      slots[kWriteHead] = res.writeHead as FlowResponse[typeof kWriteHead]
      res.writeHead = writeHeadWithReceipt as Response['writeHead']
    }
    const mirror = flow.decision?.mirror
    // probes and scrapes are never copied (service.notTraffic); the route is not known yet: its path
    if (mirror !== undefined && !service.notTraffic.has(req.path)) mirrorOnFinish(service, req, res, mirror.lane)
    if (onClose !== undefined) {
      slots[kStart] = performance.now()
      // 'close' comes once per response (after 'finish', or alone when the client went away)
      res.on('close', onClose)
    }
    // The one AsyncLocalStorage entry of the request: the rest of the chain runs inside it.
    tagger.run(flow, tagger.otelContext(flow), next)
  }
}

/**
 * Fallback receipt on the response (see the Fastify plugin): Express has no hook before the
 * headers go out, so each tagged response's writeHead is this shared function (the one it
 * replaced is kept on the response), which adds the header if a hop left the request's lane by then.
 */
function writeHeadWithReceipt (this: FlowResponse, ...args: Parameters<Response['writeHead']>): Response {
  const receipt = fallbackOf(this[kFlow])
  if (receipt !== undefined && !this.headersSent) this.setHeader(FALLBACK_HEADER, receipt)
  return this[kWriteHead](...args)
}

function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}

/** Stop accepting, let in-flight requests finish, drop idle keep-alive sockets. */
function stopServer (server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve()
      return
    }
    server.close(() => resolve())
    server.closeIdleConnections()
  })
}

export default flowTagService
export { FlowTagService }

/**
 * A mirrored request (see the Fastify plugin): the answer's body is captured as it is written (up
 * to the cap), and the copy goes out once the answer is finished, so the user never waits for it.
 */
function mirrorOnFinish (service: FlowTagService, req: Request, res: Response, lane: string): void {
  const capture = new BodyCapture(service.mirror.maxBodyBytes)
  const write = res.write
  const end = res.end
  res.write = function writeCaptured (this: Response, chunk: unknown, ...rest: unknown[]) {
    capture.add(chunk, typeof rest[0] === 'string' ? rest[0] as BufferEncoding : undefined)
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
  } as Response['write']
  res.end = function endCaptured (this: Response, ...args: unknown[]) {
    if (typeof args[0] !== 'function') capture.add(args[0], typeof args[1] === 'string' ? args[1] as BufferEncoding : undefined)
    return (end as (...a: unknown[]) => Response).apply(this, args)
  } as Response['end']
  res.once('finish', () => {
    const body = bodyBytes(req.body)
    if (body === false || (body !== undefined && body.length > service.mirror.maxBodyBytes)) {
      service.mirror.skip(lane)
      return
    }
    const route = (req.route as { path?: unknown } | undefined)?.path
    const primary: ShadowAnswer = { status: res.statusCode, headers: res.getHeaders() as ShadowAnswer['headers'], body: capture.body, truncated: capture.truncated }
    service.mirror.send({ method: req.method, url: req.originalUrl, headers: req.headers, body }, primary, typeof route === 'string' ? req.baseUrl + route : '(no route)', lane, req.flow?.tag)
  })
}
