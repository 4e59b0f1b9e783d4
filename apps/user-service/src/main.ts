#!/usr/bin/env node
// user-service: the last hop. Runs as whichever version SERVICE_VERSION names (v1, v2, ...).
import fastifyFlowTagService from '@flowtag/service/fastify'
import { HEALTH_PATH, main, nacosOptions, READY_PATH, trustAndCache } from '@flowtag/demo-kit'

await main('user-service', async (app, env) => {
  // Service mode without outbound calls: registration, probes and request.flow. The RuleSet is
  // read all the same: each instance then reports the rule version it applies, which a lane
  // canary waits for in every service of the lane before it judges a step.
  await app.register(fastifyFlowTagService, {
    service: 'user-service',
    version: env.SERVICE_VERSION,
    nacos: nacosOptions(env),
    rules: { dataId: env.RULES_DATA_ID, group: env.RULES_GROUP },
    registration: { env: env.DEPLOY_ENV, drainMs: env.DRAIN_MS },
    healthPath: HEALTH_PATH,
    readyPath: READY_PATH,
    // Signed lanes on every hop when FLOWTAG_TAG_KEY is set; rules and instances kept on disk.
    ...trustAndCache(env, 'user-service')
  })

  app.get<{ Params: { id: string } }>('/users/:id', async (request) => ({
    user: { id: request.params.id, name: `user ${request.params.id}` },
    hops: [{ service: 'user-service', version: env.SERVICE_VERSION, lane: request.flow.tag ?? null }]
  }))
})
