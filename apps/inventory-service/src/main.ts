#!/usr/bin/env node
// inventory-service: a gRPC service in lanes. Runs as SERVICE_VERSION; the gRPC server registers
// in Nacos (protocol=grpc) once bound and serves grpc.health.v1; the kit's HTTP side only
// answers probes (/health, /ready) and /metrics.
import { currentTag } from '@flowtag/context'
import { FlowTagGrpcServer } from '@flowtag/grpc/server'
import { NacosClient } from '@flowtag/nacos'
import { HEALTH_PATH, InventoryService, main, nacosOptions, READY_PATH, type StockReply, type StockRequest } from '@flowtag/demo-kit'

await main('inventory-service', async (app, env) => {
  const nacos = new NacosClient({ ...nacosOptions(env), logger: app.log })
  const grpc = new FlowTagGrpcServer({
    nacos,
    registration: { service: 'inventory-service', version: env.SERVICE_VERSION, env: env.DEPLOY_ENV, drainMs: env.DRAIN_MS, logger: app.log },
    // Service mode: the lane comes with the call's metadata; only signed lanes are honoured when
    // FLOWTAG_TAG_KEY is set, otherwise the network is trusted.
    flow: {
      logger: app.log,
      ...(env.FLOWTAG_TAG_KEY === undefined ? {} : { trust: { signed: { keys: [{ id: env.FLOWTAG_TAG_KEY_ID, secret: env.FLOWTAG_TAG_KEY }] } } })
    }
  })

  grpc.addService(InventoryService, {
    check: (call: { request: StockRequest }, cb: (err: Error | null, reply: StockReply) => void) => {
      cb(null, { sku: call.request.sku, inStock: true, hops: [{ service: 'inventory-service', version: env.SERVICE_VERSION, lane: currentTag() ?? null }] })
    }
  })

  app.get(HEALTH_PATH, { logLevel: 'warn' }, async function health () {
    return { status: 'ok' }
  })
  app.get(READY_PATH, { logLevel: 'warn' }, async function ready (_request, reply) {
    return grpc.ready ? { status: 'ready' } : reply.code(503).send({ status: 'not ready' })
  })

  app.addHook('onListen', async function startGrpc () {
    const port = await grpc.listen(`${env.HOST}:${env.GRPC_PORT}`)
    app.log.info({ grpcPort: port }, 'gRPC listening')
  })
  // Deregister, drain DRAIN_MS, finish in-flight calls, shut down; then the Nacos client.
  app.addHook('preClose', async function stopGrpc () {
    await grpc.close()
    await nacos.close()
  })
})
