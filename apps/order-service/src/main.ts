#!/usr/bin/env node
// order-service: runs as SERVICE_VERSION and calls user-service in the request's lane.
import fastifyFlowTagService from '@flowtag/service/fastify'
import { callJson, HEALTH_PATH, main, nacosOptions, READY_PATH, trustAndCache } from '@flowtag/demo-kit'

interface Upstream {
  user?: unknown
  hops?: unknown[]
}

await main('order-service', async (app, env) => {
  // Service mode: the lane comes with the request (x-flow-tag) and goes on with app.flowtag.fetch.
  // The RuleSet is still read: it says each service's stable lane, candidates and weights.
  await app.register(fastifyFlowTagService, {
    service: 'order-service',
    version: env.SERVICE_VERSION,
    mode: 'service',
    nacos: nacosOptions(env),
    rules: { dataId: env.RULES_DATA_ID, group: env.RULES_GROUP },
    registration: { env: env.DEPLOY_ENV, drainMs: env.DRAIN_MS },
    outbound: { stableLane: 'v1' },
    healthPath: HEALTH_PATH,
    readyPath: READY_PATH,
    // Signed lanes on every hop when FLOWTAG_TAG_KEY is set; rules and instances kept on disk.
    ...trustAndCache(env, 'order-service')
  })

  app.get<{ Params: { id: string }; Querystring: { user?: string } }>('/orders/:id', async (request, reply) => {
    const userId = encodeURIComponent(request.query.user ?? 'anonymous')
    const up = await callJson(app.flowtag.fetch, `http://user-service/users/${userId}`)
    const body = up.body as Upstream
    const self = { service: 'order-service', version: env.SERVICE_VERSION, lane: request.flow.tag ?? null }
    if (up.status !== 200) return reply.code(up.status).send({ ...body, hops: [self, ...(body.hops ?? [])] })
    return { order: { id: request.params.id, user: body.user }, hops: [self, ...(body.hops ?? [])] }
  })
})
