import type { NacosClientOptions } from '@flowtag/nacos'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { readEnv, type ServiceEnv } from './env.ts'
import { setupMetrics } from './metrics.ts'
import { HEALTH_PATH, METRICS_PATH, READY_PATH } from './paths.ts'

/**
 * Builds one demo app's routes and flowtag wiring on a Fastify app the kit created (pino logs,
 * Prometheus /metrics). The flowtag calls live in the apps' main.ts, not here.
 */
export type BuildApp = (app: FastifyInstance, env: ServiceEnv) => Promise<void>

/** The Nacos client options every demo app uses, from the environment. */
export function nacosOptions (env: ServiceEnv): NacosClientOptions {
  const nacos: NacosClientOptions = { serverAddr: env.NACOS_SERVER_ADDR, namespace: env.NACOS_NAMESPACE, transport: 'auto' }
  if (env.NACOS_USERNAME !== undefined) Object.assign(nacos, { username: env.NACOS_USERNAME, password: env.NACOS_PASSWORD })
  return nacos
}

/** Tag signing (when FLOWTAG_TAG_KEY is set) and the snapshot folder (FLOWTAG_CACHE_DIR/<service>), for the preset. */
export function trustAndCache (env: ServiceEnv, service: string): { signing?: { keys: Array<{ id: string; secret: string }> }; cacheDir?: string } {
  return {
    ...(env.FLOWTAG_TAG_KEY === undefined ? {} : { signing: { keys: [{ id: env.FLOWTAG_TAG_KEY_ID, secret: env.FLOWTAG_TAG_KEY }] } }),
    ...(env.FLOWTAG_CACHE_DIR === undefined ? {} : { cacheDir: join(env.FLOWTAG_CACHE_DIR, service) })
  }
}

/** An app that can be stopped: a Fastify instance, or a Nest app's close with its logger. */
export interface Closable {
  log: { info(obj: object, msg: string): void, error(obj: unknown): void }
  close(): Promise<unknown>
}

/** Close on SIGINT/SIGTERM: app.close() deregisters, drains, closes; then exit (0, or 1 if closing failed). */
export function closeOnSignals (app: Closable): void {
  let closing = false
  const stop = (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'stopping: deregistering, then draining')
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error(err)
        process.exit(1)
      }
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

/** Answer a share of the app's own requests (not probes, not /metrics) with 500, after tagging. */
function failSome (app: FastifyInstance, rate: number): void {
  let n = 0
  app.addHook('preHandler', async (request, reply) => {
    const url = request.routeOptions.url
    if (url === HEALTH_PATH || url === READY_PATH || url === METRICS_PATH) return
    // every 1/rate-th request, deterministic: the share holds over any window
    n += rate
    if (n >= 1) {
      n -= 1
      return reply.code(500).send({ error: 'Internal Server Error', message: `injected failure (FAIL_RATE=${rate})` })
    }
  })
}

/** Exit in the middle of every `every`-th request of the app's own routes: nothing is answered or counted. */
function crashSome (app: FastifyInstance, every: number): void {
  let n = 0
  app.addHook('preHandler', async (request) => {
    const url = request.routeOptions.url
    if (url === HEALTH_PATH || url === READY_PATH || url === METRICS_PATH) return
    if (++n % every === 0) {
      request.log.error({ served: n }, `crashing (CRASH_EVERY=${every})`)
      process.exit(1)
    }
  })
}

/**
 * Run a demo app from the environment: Fastify with pino logs and Prometheus /metrics, the
 * app's own build step, listen on HOST:PORT, stop on signals; exit 1 with the reason if it
 * cannot start.
 */
export async function main (name: string, build: BuildApp): Promise<void> {
  try {
    const env = readEnv()
    const app = Fastify({
      logger: { level: env.LOG_LEVEL, base: { service: name, version: env.SERVICE_VERSION } },
      // Keep serving while draining: flowtag deregisters first, then waits DRAIN_MS for callers
      // to drop this instance; Fastify's default would answer 503 during that wait.
      return503OnClosing: false
    })
    // Registered first: the global MeterProvider then also collects flowtag's own instruments.
    setupMetrics(app, { service: name, version: env.SERVICE_VERSION })
    if (env.FAIL_RATE > 0) failSome(app, env.FAIL_RATE)
    if (env.CRASH_EVERY > 0) crashSome(app, env.CRASH_EVERY)
    await build(app, env)
    closeOnSignals(app)
    const address = await app.listen({ port: env.PORT, host: env.HOST })
    app.log.info({ address }, 'listening')
  } catch (err) {
    const e = err as Error & { code?: string }
    console.error(`${e.code ?? 'error'}: ${e.message}`)
    process.exit(1)
  }
}
