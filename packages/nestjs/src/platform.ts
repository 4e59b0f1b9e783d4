// The request half of the preset on the app's own HTTP server: Nest hands over the Express app or
// the Fastify instance (`HttpAdapterHost`) while it creates the providers, before it registers
// any middleware or route, so the preset's middleware (Express) or hooks (Fastify) come first.
import { FlowTagError } from '@flowtag/errors'
import type { FlowTagService } from '@flowtag/service'
import { flowTagRequests } from '@flowtag/service/express'
import { fastifyFlowTagRequests } from '@flowtag/service/fastify'
import type { HttpAdapterHost } from '@nestjs/core'
import { badNestOption, errorCodes, PACKAGE } from './errors.ts'

/** The service bound to each HTTP server instance: one FlowTagModule per app. */
const bound = new WeakMap<object, string>()

/** Which platform the app runs on; `none` for an app without HTTP (a microservice, a standalone context). */
export type FlowTagPlatform = 'express' | 'fastify' | 'none'

/**
 * Put `/health`, `/ready` and the tagging of every request on the app's platform.
 * @throws {FlowTagError} `FLOWTAG_NEST_UNSUPPORTED_PLATFORM` for another HTTP adapter;
 *   `FLOWTAG_NEST_BAD_OPTION` when the module is imported twice (with other options) in one app.
 */
export function bindPlatform (host: HttpAdapterHost | undefined, service: FlowTagService): FlowTagPlatform {
  const adapter = host?.httpAdapter
  if (adapter === undefined || adapter === null) return 'none'
  const type = adapter.getType()
  const instance = adapter.getInstance() as {
    use(fn: unknown): unknown
    register(plugin: unknown, options: unknown): unknown
  }
  // Nest merges identical imports; two different ones would register the one server as two
  // services and tag each request twice, so the second is refused.
  const first = bound.get(instance)
  if (first !== undefined) {
    void service.close()
    throw badNestOption('forRoot', `FlowTagModule is imported more than once in this app (service "${first}", then "${service.name}"); import forRoot() or forRootAsync() once, in the root module (the module is global)`)
  }
  if (type === 'express' || type === 'fastify') bound.set(instance, service.name)
  if (type === 'express') {
    instance.use(flowTagRequests(service))
    return 'express'
  }
  if (type === 'fastify') {
    // Loaded with Nest's own plugins when the adapter initialises, before the routes.
    void instance.register(fastifyFlowTagRequests, { service })
    return 'fastify'
  }
  // Nest fails to start: release what the service opened (the rule source) so nothing lingers.
  void service.close()
  throw new FlowTagError(errorCodes.UNSUPPORTED_PLATFORM, `${PACKAGE}: the HTTP adapter "${String(type)}" is not supported; use @nestjs/platform-express or @nestjs/platform-fastify`)
}
