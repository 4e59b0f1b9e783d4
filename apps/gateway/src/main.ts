#!/usr/bin/env node
// gateway: the edge. Decides each request's lane from the live RuleSet and routes it to
// order-service in that lane; the answer lists which version served each hop.
import fastifyFlowTagService from '@flowtag/service/fastify'
import { callJson, HEALTH_PATH, main, nacosOptions, READY_PATH, trustAndCache } from '@flowtag/demo-kit'

await main('gateway', async (app, env) => {
  // One call makes the app lane-aware: registers in Nacos on listen (/health, /ready), reads the
  // RuleSet live from the config center, tags each request by the rules (edge mode), and gives
  // app.flowtag.fetch for calls by service name in the request's lane.
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

  app.get<{ Params: { id: string } }>('/api/orders/:id', async (request, reply) => {
    const user = request.headers['x-user-id']
    const query = typeof user === 'string' ? `?user=${encodeURIComponent(user)}` : ''
    // The rule version this request was decided with: read now, not after the upstream call.
    const ruleVersion = app.flowtag.rules?.version ?? null
    const up = await callJson(app.flowtag.fetch, `http://order-service/orders/${encodeURIComponent(request.params.id)}${query}`)
    const body = up.body as { hops?: unknown[] }
    const decision = request.flow.decision
    const self = { service: 'gateway', version: env.SERVICE_VERSION, lane: request.flow.tag ?? null, rule: decision?.rule ?? null, ruleVersion }
    return reply.code(up.status).send({ ...body, hops: [self, ...(body.hops ?? [])] })
  })
})
