import fastifyFlowTag from '@flowtag/context/fastify'
import type { NacosClientOptions } from '@flowtag/nacos'
import fastifyNacos from '@flowtag/nacos/fastify'
import { FlowtagDispatcher, OutboundError } from '@flowtag/outbound'
import { createRuleStore, nacosSource, serviceLanes, type RuleStore } from '@flowtag/rules'
import Fastify, { type FastifyInstance } from 'fastify'
import { readEnv, type ServiceEnv } from './env.ts'
import { setupMetrics } from './metrics.ts'
import { HEALTH_PATH, READY_PATH } from './paths.ts'

export interface DemoService {
  app: FastifyInstance
  env: ServiceEnv
  rules: RuleStore
  /** undici dispatcher for `http://<service-name>/...` calls, in the request's lane. */
  outbound: FlowtagDispatcher
  /** Listen on HOST:PORT; registration in Nacos follows on listen. */
  start(): Promise<string>
}

/** A stable lane every service falls back to when the RuleSet names none. */
const STABLE = 'v1'

/**
 * One demo service: Fastify with pino logs carrying the lane, the Nacos registry plugin
 * (register on listen, /health, /ready, deregister and drain on close), the flow-tag plugin
 * (edge: evaluate the RuleSet; service: trust the incoming tag), a live RuleStore fed by the
 * Nacos config center, the lane-aware outbound dispatcher, and Prometheus /metrics.
 */
export async function createService(name: string, mode: 'edge' | 'service', env: ServiceEnv = readEnv()): Promise<DemoService> {
  const app = Fastify({
    logger: { level: env.LOG_LEVEL, base: { service: name, version: env.SERVICE_VERSION } },
    // Keep serving while draining: the registry plugin deregisters first, then waits DRAIN_MS
    // for callers to drop this instance; Fastify's default would answer 503 during that wait.
    return503OnClosing: false
  })
  const meter = setupMetrics(app, { service: name, version: env.SERVICE_VERSION })

  const nacos: NacosClientOptions = { serverAddr: env.NACOS_SERVER_ADDR, namespace: env.NACOS_NAMESPACE, logger: app.log }
  if (env.NACOS_USERNAME !== undefined) Object.assign(nacos, { username: env.NACOS_USERNAME, password: env.NACOS_PASSWORD })
  await app.register(fastifyNacos, {
    nacos,
    service: name,
    version: env.SERVICE_VERSION,
    env: env.DEPLOY_ENV,
    drainMs: env.DRAIN_MS,
    healthPath: HEALTH_PATH,
    readyPath: READY_PATH
  })

  const rules = createRuleStore({
    source: nacosSource({ config: app.nacos.client.config, dataId: env.RULES_DATA_ID, group: env.RULES_GROUP }),
    logger: app.log
  })
  await app.register(fastifyFlowTag, { mode, rules, logger: app.log })
  // Every log line of a request says which lane it is in.
  app.addHook('onRequest', async (request) => {
    request.log = request.log.child({ lane: request.flow.tag ?? 'none' })
  })

  const outbound = new FlowtagDispatcher({
    discovery: app.nacos.discovery,
    labelKey: 'version',
    stableLane: STABLE,
    lanes: (service) => (rules.current === undefined ? undefined : serviceLanes(rules.current, service)),
    meter
  })

  // Routing failures are the platform's, not the caller's: 503 with the flowtag code.
  app.setErrorHandler(async (err, request, reply) => {
    if (err instanceof OutboundError) {
      request.log.warn({ code: err.code, service: err.service }, err.message)
      return reply.code(503).send({ error: err.code, message: err.message })
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500
    if (status >= 500) request.log.error(err)
    return reply.code(status).send({ error: (err as { code?: string }).code ?? 'ERROR', message: err instanceof Error ? err.message : String(err) })
  })

  app.addHook('onClose', async () => {
    await outbound.close()
    rules.close()
  })

  return {
    app,
    env,
    rules,
    outbound,
    async start() {
      await rules.ready
      return app.listen({ port: env.PORT, host: env.HOST })
    }
  }
}

/** Close on SIGINT/SIGTERM: deregister, drain, then exit. */
export function closeOnSignals(service: DemoService): void {
  let closing = false
  const stop = (signal: string) => {
    if (closing) return
    closing = true
    service.app.log.info({ signal }, 'stopping: deregistering, then draining')
    service.app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        service.app.log.error(err)
        process.exit(1)
      }
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

/** Run a service from the environment; exit 1 with the reason if it cannot start. */
export async function main(build: () => Promise<DemoService>): Promise<void> {
  try {
    const service = await build()
    closeOnSignals(service)
    const address = await service.start()
    service.app.log.info({ address }, 'listening')
  } catch (err) {
    const e = err as Error & { code?: string }
    console.error(`${e.code ?? 'error'}: ${e.message}`)
    process.exit(1)
  }
}
