#!/usr/bin/env node
// inventory-service: a Nest app in lanes (@flowtag/nestjs) serving gRPC. Runs as SERVICE_VERSION;
// its gRPC microservice registers in Nacos (protocol=grpc) once bound and serves grpc.health.v1;
// the HTTP side (Fastify) answers probes (/health, /ready) and /metrics.
import { FlowTagService } from '@flowtag/nestjs'
import { FlowTagGrpcTransport } from '@flowtag/nestjs/grpc'
import { closeOnSignals, READY_PATH, readEnv, setupMetrics } from '@flowtag/demo-kit'
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { InventoryModule, packageDefinition } from './inventory.module.ts'
import { nestPino, startOrExit } from './nest-logging.ts'

await startOrExit(async () => {
  const env = readEnv()
  // Serve while draining: the gRPC server deregisters first, then waits DRAIN_MS.
  const adapter = new FastifyAdapter({ logger: { level: env.LOG_LEVEL, base: { service: 'inventory-service', version: env.SERVICE_VERSION } }, return503OnClosing: false })
  const http = adapter.getInstance()
  setupMetrics(http, { service: 'inventory-service', version: env.SERVICE_VERSION })
  const app = await NestFactory.create<NestFastifyApplication>(InventoryModule.forRoot(env, http.log), adapter, { logger: nestPino(http.log) })

  // Service mode: the lane comes with the call's metadata; only signed lanes when FLOWTAG_TAG_KEY is set.
  const trust = env.FLOWTAG_TAG_KEY === undefined ? {} : { trust: { signed: { keys: [{ id: env.FLOWTAG_TAG_KEY_ID, secret: env.FLOWTAG_TAG_KEY }] } } }
  const grpc = new FlowTagGrpcTransport({
    package: 'flowtag.demo',
    packageDefinition,
    url: `${env.HOST}:${env.GRPC_PORT}`,
    flowtag: { nacos: app.get(FlowTagService).nacos, registration: { service: 'inventory-service', version: env.SERVICE_VERSION, env: env.DEPLOY_ENV, drainMs: env.DRAIN_MS, logger: http.log }, flow: { logger: http.log, ...trust } }
  })
  app.connectMicroservice({ strategy: grpc })
  http.get(READY_PATH, { logLevel: 'warn' }, async (_request, reply) => grpc.flowTagServer?.ready === true ? { status: 'ready' } : reply.code(503).send({ status: 'not ready' }))

  await app.startAllMicroservices()
  http.log.info({ grpcPort: grpc.flowTagServer?.port }, 'gRPC listening')
  await app.listen(env.PORT, env.HOST)
  http.log.info({ address: await app.getUrl() }, 'listening')
  // Deregister, drain DRAIN_MS, finish in-flight calls (the gRPC server); then Nest's close.
  closeOnSignals({ log: http.log, close: async () => { await grpc.close(); await app.close() } })
})
