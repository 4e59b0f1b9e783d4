#!/usr/bin/env node
// order-service: runs as SERVICE_VERSION and calls user-service (HTTP) and inventory-service
// (gRPC) in the request's lane.
import { credentials } from '@grpc/grpc-js'
import { FlowTagGrpc } from '@flowtag/grpc'
import { serviceLanes } from '@flowtag/rules'
import fastifyFlowTagService from '@flowtag/service/fastify'
import { callJson, HEALTH_PATH, InventoryClient, InventoryService, main, nacosOptions, READY_PATH, checkStock, trustAndCache, type Hop } from '@flowtag/demo-kit'

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

  // gRPC hop: the same discovery and the same RuleSet lanes as the HTTP hop, per call.
  const grpcLanes = new FlowTagGrpc({
    discovery: app.flowtag.discovery,
    stableLane: 'v1',
    lanes: (service) => serviceLanes(app.flowtag.rules?.compiled, service),
    logger: app.log,
    // A read: a reply whose status a dying instance never sent is run again on another instance.
    idempotentMethods: [InventoryService.check],
    // The gRPC hop signs the lane too when FLOWTAG_TAG_KEY is set (inventory-service verifies it).
    ...(env.FLOWTAG_TAG_KEY === undefined ? {} : { sign: { key: { id: env.FLOWTAG_TAG_KEY_ID, secret: env.FLOWTAG_TAG_KEY } } })
  })
  const inventory = new InventoryClient('nacos:///inventory-service', credentials.createInsecure(), grpcLanes.clientOptions())
  app.addHook('onClose', async function closeGrpc () {
    inventory.close()
    grpcLanes.close()
  })

  app.get<{ Params: { id: string }; Querystring: { user?: string } }>('/orders/:id', async (request, reply) => {
    const userId = encodeURIComponent(request.query.user ?? 'anonymous')
    const self = { service: 'order-service', version: env.SERVICE_VERSION, lane: request.flow.tag ?? null }
    let stock: { hops: Hop[] }
    try {
      stock = await checkStock(inventory, { sku: request.params.id })
    } catch (err) {
      const e = err as { code?: number; details?: string }
      request.log.warn({ grpcCode: e.code, details: e.details }, 'inventory-service call failed')
      return reply.code(503).send({ error: 'inventory-service unavailable', details: e.details ?? null, hops: [self] })
    }
    const up = await callJson(app.flowtag.fetch, `http://user-service/users/${userId}`)
    const body = up.body as Upstream
    const hops = [self, ...stock.hops, ...(body.hops ?? [])]
    if (up.status !== 200) return reply.code(up.status).send({ ...body, hops })
    return { order: { id: request.params.id, user: body.user }, hops }
  })
})
