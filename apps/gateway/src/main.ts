#!/usr/bin/env node
// gateway: the edge. Decides each request's lane from the live RuleSet and proxies it to
// order-service in that lane: @fastify/reply-from with a service name as its upstream and the
// lane-aware dispatcher as its undici (outbound's README, "Edge gateway as proxy configuration").
// The demo's answers list which version served each hop; that bookkeeping is in hops.ts.
import replyFrom from '@fastify/reply-from'
import fastifyFlowTagService from '@flowtag/service/fastify'
import { HEALTH_PATH, main, nacosOptions, READY_PATH, trustAndCache } from '@flowtag/demo-kit'
import { gatewayHops } from './hops.ts'

await main('gateway', async (app, env) => {
  // One call makes the app lane-aware: registers in Nacos on listen (/health, /ready), reads the
  // RuleSet live from the config center, tags each request by the rules (edge mode), and gives
  // app.flowtag.dispatcher for calls by service name in the request's lane.
  await app.register(fastifyFlowTagService, {
    service: 'gateway',
    version: env.SERVICE_VERSION,
    mode: 'edge',
    nacos: nacosOptions(env),
    rules: { dataId: env.RULES_DATA_ID, group: env.RULES_GROUP },
    registration: { env: env.DEPLOY_ENV, drainMs: env.DRAIN_MS },
    // Untagged calls, and services the RuleSet does not name, go to v1.
    outbound: { stableLane: 'v1' },
    // FLOWTAG_DEBUG=1: answers carry x-flowtag-fallback when a hop left the request's lane.
    debug: env.FLOWTAG_DEBUG,
    healthPath: HEALTH_PATH,
    readyPath: READY_PATH,
    // Signed lanes on every hop when FLOWTAG_TAG_KEY is set; rules and instances kept on disk.
    ...trustAndCache(env, 'gateway')
  })

  // The proxy is configuration: a service name as the upstream, the lane-aware dispatcher as
  // reply-from's undici (reply-from 12 types that option with undici 7's types; it calls only
  // request() on it, hence `as never`). Retries of connection failures are the dispatcher's (each
  // on another instance), so reply-from's own (including its retries of 503 answers) are off.
  await app.register(replyFrom, {
    base: 'http://order-service',
    undici: app.flowtag.dispatcher as never,
    disableRequestLogging: true
  })

  const hops = gatewayHops(app, env.SERVICE_VERSION)
  // GET reads an order, POST places one (order-service then publishes order-created in the lane).
  app.route<{ Params: { id: string } }>({
    method: ['GET', 'POST'],
    url: '/api/orders/:id',
    onRequest: hops.onRequest,
    handler: (request, reply) => {
      const user = request.headers['x-user-id']
      const query = typeof user === 'string' ? `?user=${encodeURIComponent(user)}` : ''
      return reply.from(`/orders/${encodeURIComponent(request.params.id)}${query}`, { retryDelay: () => null, ...hops.replyOptions })
    }
  })
})
