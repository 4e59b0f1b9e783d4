// @flowtag/service/fastify: one register() makes a Fastify app lane-aware. The work is the
// FlowTagService core (service.ts); this file composes the context plugin (tagging) and the nacos
// plugin (probes, registration lifecycle) over it, and adds mirrors, receipts and metrics.
import { FALLBACK_HEADER, type FlowContext } from '@flowtag/context'
import { fallbackOf } from '@flowtag/context/internals'
import { fastifyFlowTag } from '@flowtag/context/fastify'
import { fastifyNacos, type NacosLifecycle } from '@flowtag/nacos/fastify'
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

// private per-request slot: a mirrored request's capture
const kMirror = Symbol('flowtag.service.mirror')

interface MirrorSlot {
  lane: string
  capture: BodyCapture
  status: number
  headers: ShadowAnswer['headers']
}

interface FlowRequest extends FastifyRequest {
  [kMirror]: MirrorSlot | null
}

const fastifyFlowTagServicePlugin: FastifyPluginAsync<FastifyFlowTagServiceOptions> = async function fastifyFlowTagService (fastify, options) {
  // register() options that belong to Fastify, not to us
  const { prefix: _p, logLevel: _l, logSerializers: _s, ...ours } = options as FastifyFlowTagServiceOptions & Record<string, unknown>
  const service = new FlowTagService({ logger: fastify.log, ...ours } as FlowTagServiceOptions)
  // Deregister first, and keep serving drainMs, before Fastify stops the server (preClose). Fastify
  // marks itself closing before preClose, so with return503OnClosing on (its default) new requests
  // get 503 meanwhile: create Fastify with { return503OnClosing: false }, or call
  // app.flowtag.drain() before app.close(). Fastify does not expose the setting, hence no check.
  await installRequestHooks(fastify, service, true)
}

/** The service as the nacos plugin's lifecycle: prepare on onReady, start on onListen, drain, close. */
function lifecycleOf (service: FlowTagService): NacosLifecycle {
  return {
    get ready () { return service.ready },
    get registered () { return service.registration?.registered ?? false },
    get draining () { return service.draining },
    check: () => service.prepare(),
    start: (address) => service.start(address),
    drain: () => service.drain(),
    close: () => service.close()
  }
}

/**
 * The per-request half of the preset: probes (and with `hooks` the lifecycle), tagging, receipts,
 * mirrors, metrics; `fastify.flowtag`, `request.flow`.
 */
async function installRequestHooks (fastify: FastifyInstance, service: FlowTagService, hooks: boolean): Promise<void> {
  fastify.decorate('flowtag', service)
  fastify.decorateRequest(kMirror, null)

  // /health, /ready and, with hooks, the lifecycle (onReady, onListen, preClose, onClose)
  await fastify.register(fastifyNacos, { lifecycle: lifecycleOf(service), hooks, healthPath: service.healthPath, readyPath: service.readyPath })
  const prometheus = service.prometheus
  if (prometheus !== undefined) {
    fastify.get(prometheus.path, { logLevel: 'warn' }, async function metrics (_request, reply) {
      return reply.type(PROMETHEUS_CONTENT_TYPE).send(await prometheus.text())
    })
  }

  // Tagging (onRequest, and the flow re-entered in preValidation when lost), with the lane on
  // every log line of the request.
  await fastify.register(fastifyFlowTag, { tagger: service.tagger, laneLogger: true })

  // Mirrors: the primary's answer is captured as it is sent; the copy goes out once the user has
  // the answer (onResponse), so the user never waits for it.
  const mirrorSlot = (request: FastifyRequest): MirrorSlot | null => {
    const slot = (request as FlowRequest)[kMirror]
    if (slot !== null) return slot
    const mirror = request.flow?.decision?.mirror
    // probes and scrapes are never copied (service.notTraffic)
    if (mirror === undefined || service.notTraffic.has(request.routeOptions.url ?? pathOf(request.url))) return null
    return ((request as FlowRequest)[kMirror] = { lane: mirror.lane, capture: new BodyCapture(service.mirror.maxBodyBytes), status: 0, headers: {} })
  }
  fastify.addHook('onSend', function flowTagServiceMirrorCapture (request, reply, payload, done) {
    const slot = mirrorSlot(request)
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
    const slot = mirrorSlot(request)
    if (slot !== null) {
      const body = bodyBytes(request.body)
      if (body === false || (body !== undefined && body.length > service.mirror.maxBodyBytes)) service.mirror.skip(slot.lane)
      else {
        const primary: ShadowAnswer = { status: slot.status === 0 ? reply.statusCode : slot.status, headers: slot.headers, body: slot.capture.body, truncated: slot.capture.truncated }
        service.mirror.send({ method: request.method, url: request.url, headers: request.headers, body }, primary, request.routeOptions.url ?? '(no route)', slot.lane, request.flow?.tag)
      }
    }
    done()
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
 * services by name in the request's lane). It registers `@flowtag/context/fastify` (tagging:
 * `onRequest`, `preValidation`; `fastify.flowTagger` is the service's tagger) and
 * `@flowtag/nacos/fastify` with the service as its `lifecycle` (probes; `onReady`, `onListen`,
 * `preClose`, `onClose`), and adds `onSend` and `onResponse` (receipts, metrics; mirrors: capture
 * the answer, then send the copy). Options: `FlowTagServiceOptions` (`service`, `nacos`, `rules`,
 * `mode` @default 'service', `version`, `registration`, `trust`, `outbound`, `otel` @default true,
 * `metrics` @default true (`{ path: '/metrics', excludeRoutes: [] }`: not counted as traffic),
 * `healthPath` @default '/health', `readyPath` @default '/ready', `shadow` @default `{}` (mirrors:
 * `{ comparer?, maxInFlight: 16, maxBodyBytes: 1 MiB, timeoutMs: 5000 }`)); `logger` @default `fastify.log`.
 *
 * @example
 * await app.register(fastifyFlowTagService, { service: 'order-service', version: 'v2', nacos: { serverAddr: '127.0.0.1:8848' }, rules: { dataId: 'flowtag-rules.json' } })
 * @throws {FlowTagError} `FLOWTAG_SERVICE_BAD_OPTION` (at registration) naming the field
 */
export const fastifyFlowTagService = fp(fastifyFlowTagServicePlugin, { fastify: '5.x', name: '@flowtag/service' })
export default fastifyFlowTagService
export { FlowTagService }

export interface FastifyFlowTagRequestsOptions {
  /** The service (from `createFlowTagService`) whose requests to tag; its lifecycle stays the caller's. */
  service: FlowTagService
}

const fastifyFlowTagRequestsPlugin: FastifyPluginAsync<FastifyFlowTagRequestsOptions> = async function fastifyFlowTagRequests (fastify, options) {
  await installRequestHooks(fastify, options.service, false)
}

/**
 * The per-request half of {@link fastifyFlowTagService}, for a {@link FlowTagService} whose lifecycle
 * (`prepare`, `start`, `drain`, `close`) the caller drives, as a framework over Fastify does
 * (@flowtag/nestjs): `/health`, `/ready`, tagging (`request.flow`), fallback receipts and metrics,
 * and `fastify.flowtag`. It adds no lifecycle hook: nothing registers or closes here.
 */
export const fastifyFlowTagRequests = fp(fastifyFlowTagRequestsPlugin, { fastify: '5.x', name: '@flowtag/service/requests' })
