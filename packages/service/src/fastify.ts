// @flowtag/service/fastify: one register() makes a Fastify app lane-aware. The work is the
// FlowTagService core (service.ts); this file maps it onto Fastify's hooks and routes.
import { currentFlow, fallbackOf, FALLBACK_HEADER, type FlowContext, type FlowTagger, type RequestFacts } from '@flowtag/context'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { FlowTagService } from './service.ts'
import { PROMETHEUS_CONTENT_TYPE } from './prometheus.ts'
import type { FlowTagServiceOptions } from './options.ts'
import { BodyCapture, bodyBytes, type ShadowAnswer } from './mirror.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The service's flowtag parts: `fetch`, `dispatcher`, `rules`, `nacos`, `registration`, `drain()`. */
    flowtag: FlowTagService
  }
  interface FastifyRequest {
    /** This request's flow: its lane (`flow.tag`), why (`flow.decision`), baggage. */
    flow: FlowContext
  }
}

export type FastifyFlowTagServiceOptions = Omit<FlowTagServiceOptions, 'logger'> & {
  /** Default: the app's logger (`fastify.log`). */
  logger?: FlowTagServiceOptions['logger']
}

// private per-request slots: the OTel context to re-enter in preValidation; a mirrored request's capture
const kOtelContext = Symbol('flowtag.service.otelContext')
const kMirror = Symbol('flowtag.service.mirror')

interface MirrorSlot {
  lane: string
  capture: BodyCapture
  status: number
  headers: ShadowAnswer['headers']
}

interface FlowRequest extends FastifyRequest {
  [kOtelContext]: ReturnType<FlowTagger['otelContext']> | null
  [kMirror]: MirrorSlot | null
}

const fastifyFlowTagServicePlugin: FastifyPluginAsync<FastifyFlowTagServiceOptions> = async function fastifyFlowTagService (fastify, options) {
  // register() options that belong to Fastify, not to us
  const { prefix: _p, logLevel: _l, logSerializers: _s, ...ours } = options as FastifyFlowTagServiceOptions & Record<string, unknown>
  const service = new FlowTagService({ logger: fastify.log, ...ours } as FlowTagServiceOptions)
  installRequestHooks(fastify, service)

  fastify.addHook('onReady', async function flowTagServicePrepare () {
    await service.prepare()
  })

  fastify.addHook('onListen', async function flowTagServiceRegister () {
    const address = fastify.server.address()
    await service.start(typeof address === 'object' && address !== null ? address : undefined)
  })

  // Deregister first, and keep serving drainMs, before Fastify stops the server. Fastify marks
  // itself closing before preClose, so with return503OnClosing on (its default) new requests get
  // 503 meanwhile: create Fastify with { return503OnClosing: false }, or call
  // app.flowtag.drain() before app.close(). Fastify does not expose the setting, hence no check.
  fastify.addHook('preClose', async function flowTagServiceDrain () {
    await service.drain()
  })

  // After in-flight requests: outbound, rules, then the Nacos client (each only if ours).
  fastify.addHook('onClose', async function flowTagServiceClose () {
    await service.close()
  })
}

/** The per-request half of the preset: probes, tagging, receipts, metrics; `fastify.flowtag`, `request.flow`. */
function installRequestHooks (fastify: FastifyInstance, service: FlowTagService): void {
  const { tagger } = service

  fastify.decorate('flowtag', service)
  fastify.decorateRequest('flow', null as unknown as FlowContext)
  fastify.decorateRequest(kOtelContext, null)
  fastify.decorateRequest(kMirror, null)

  if (service.healthPath !== false) {
    fastify.get(service.healthPath, { logLevel: 'warn' }, async function health () {
      return { status: 'ok' }
    })
  }
  if (service.readyPath !== false) {
    fastify.get(service.readyPath, { logLevel: 'warn' }, async function ready (_request, reply) {
      const r = service.readiness()
      return reply.code(r.ready ? 200 : 503).send(r.body)
    })
  }
  const prometheus = service.prometheus
  if (prometheus !== undefined) {
    fastify.get(prometheus.path, { logLevel: 'warn' }, async function metrics (_request, reply) {
      return reply.type(PROMETHEUS_CONTENT_TYPE).send(await prometheus.text())
    })
  }

  fastify.addHook('onRequest', function flowTagServiceOnRequest (request, _reply, next) {
    const flow = tagger.decide(request as unknown as RequestFacts, request.log)
    request.flow = flow
    // Every log line of the request says which lane it is in.
    request.log = request.log.child({ lane: flow.tag ?? 'none' })
    const otelCtx = tagger.otelContext(flow)
    ;(request as FlowRequest)[kOtelContext] = otelCtx ?? null
    const mirror = flow.decision?.mirror
    // probes and scrapes are never copied (service.notTraffic)
    if (mirror !== undefined && !service.notTraffic.has(request.routeOptions.url ?? pathOf(request.url))) (request as FlowRequest)[kMirror] = { lane: mirror.lane, capture: new BodyCapture(service.mirror.maxBodyBytes), status: 0, headers: {} }
    tagger.run(flow, otelCtx, next)
  })

  // Mirrors: the primary's answer is captured as it is sent; the copy goes out once the user has
  // the answer (onResponse), so the user never waits for it.
  fastify.addHook('onSend', function flowTagServiceMirrorCapture (request, reply, payload, done) {
    const slot = (request as FlowRequest)[kMirror]
    if (slot !== null) {
      slot.status = reply.statusCode
      slot.headers = reply.getHeaders() as ShadowAnswer['headers']
      // a streamed payload is not read here: its body counts as cut at 0 bytes
      if (typeof payload === 'string' || Buffer.isBuffer(payload)) slot.capture.add(payload)
      else if (payload !== null && payload !== undefined) slot.capture.truncated = true
    }
    done(null, payload)
  })
  fastify.addHook('onResponse', function flowTagServiceMirror (request, reply, done) {
    const slot = (request as FlowRequest)[kMirror]
    if (slot !== null) {
      ;(request as FlowRequest)[kMirror] = null
      const body = bodyBytes(request.body)
      if (body === false || (body !== undefined && body.length > service.mirror.maxBodyBytes)) service.mirror.skip(slot.lane)
      else {
        const primary: ShadowAnswer = { status: slot.status === 0 ? reply.statusCode : slot.status, headers: slot.headers, body: slot.capture.body, truncated: slot.capture.truncated }
        service.mirror.send({ method: request.method, url: request.url, headers: request.headers, body }, primary, request.routeOptions.url ?? '(no route)', slot.lane, request.flow?.tag)
      }
    }
    done()
  })

  // The request may resume in another async context before the handler (nodejs/node#34430):
  // re-enter the flow in preValidation when it was lost, as @flowtag/context/fastify does.
  fastify.addHook('preValidation', function flowTagServiceReenter (request, _reply, next) {
    if (currentFlow() === request.flow) {
      next()
      return
    }
    tagger.run(request.flow, (request as FlowRequest)[kOtelContext] ?? undefined, next)
  })

  // Fallback receipt: a service tells its caller where the request left its lane (so the
  // receipt travels back to the edge); the edge tells the client only with `debug`.
  if (service.receipts) {
    fastify.addHook('onSend', function flowTagServiceReceipt (request, reply, payload, done) {
      const receipt = fallbackOf(request.flow ?? undefined)
      if (receipt !== undefined) reply.header(FALLBACK_HEADER, receipt)
      done(null, payload)
    })
  }

  const metrics = service.metrics
  if (metrics !== undefined) {
    // Probes and scrapes (healthPath, readyPath, metrics.path, metrics.excludeRoutes) are skipped
    // by the metrics: they are no request of a lane, and a canary would count them as traffic.
    fastify.addHook('onResponse', function flowTagServiceMetrics (request, reply, done) {
      const route = request.routeOptions.url
      metrics.record({ lane: request.flow?.tag, method: request.method, route, path: route === undefined ? pathOf(request.url) : undefined, status: reply.statusCode, seconds: reply.elapsedTime / 1000 })
      done()
    })
    // The client went away before the answer: a network error, counted apart from 5xx.
    fastify.addHook('onRequestAbort', function flowTagServiceAborted (request, done) {
      const route = request.routeOptions.url
      metrics.record({ lane: request.flow?.tag, method: request.method, route, path: route === undefined ? pathOf(request.url) : undefined, status: undefined, seconds: 0 })
      done()
    })
  }
}

/** The path of a request URL, without its query. */
function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}

/**
 * The preset as a Fastify plugin: registers with Nacos on listen (deregisters, then drains, on
 * close), serves `/health` and `/ready`, reads the RuleSet live, tags each request with its lane
 * (`request.flow`) and decorates `fastify.flowtag` (the {@link FlowTagService}: `fetch` calls other
 * services by name in the request's lane). Hooks: `onRequest`, `preValidation`, `onSend` and
 * `onResponse` (mirrors: capture the answer, then send the copy), `onReady`, `onListen`,
 * `preClose`, `onClose`. Options: `FlowTagServiceOptions` (`service`, `nacos`, `rules`,
 * `mode` @default 'service', `version`, `registration`, `trust`, `outbound`, `otel` @default true,
 * `metrics` @default true (`{ path: '/metrics', excludeRoutes: [] }`: not counted as traffic),
 * `healthPath` @default '/health', `readyPath` @default '/ready', `shadow` @default `{}` (mirrors:
 * `{ comparer?, maxInFlight: 16, maxBodyBytes: 1 MiB, timeoutMs: 5000 }`)); `logger` @default `fastify.log`.
 *
 * @example
 * await app.register(fastifyFlowTagService, { service: 'order-service', version: 'v2', nacos: { serverAddr: '127.0.0.1:8848' }, rules: { dataId: 'flowtag-rules.json' } })
 * @throws {FlowtagError} `FLOWTAG_SERVICE_BAD_OPTION` (at registration) naming the field
 */
export const fastifyFlowTagService = fp(fastifyFlowTagServicePlugin, { fastify: '5.x', name: '@flowtag/service' })
export default fastifyFlowTagService
export { FlowTagService }

export interface FastifyFlowTagRequestsOptions {
  /** The service (from `createFlowTagService`) whose requests to tag; its lifecycle stays the caller's. */
  service: FlowTagService
}

const fastifyFlowTagRequestsPlugin: FastifyPluginAsync<FastifyFlowTagRequestsOptions> = async function fastifyFlowTagRequests (fastify, options) {
  installRequestHooks(fastify, options.service)
}

/**
 * The per-request half of {@link fastifyFlowTagService}, for a {@link FlowTagService} whose lifecycle
 * (`prepare`, `start`, `drain`, `close`) the caller drives, as a framework over Fastify does
 * (@flowtag/nestjs): `/health`, `/ready`, tagging (`request.flow`), fallback receipts and metrics,
 * and `fastify.flowtag`. It adds no lifecycle hook: nothing registers or closes here.
 */
export const fastifyFlowTagRequests = fp(fastifyFlowTagRequestsPlugin, { fastify: '5.x', name: '@flowtag/service/requests' })
