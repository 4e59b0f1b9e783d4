#!/usr/bin/env node
// order-service: runs as SERVICE_VERSION and calls user-service (HTTP) and inventory-service
// (gRPC) in the request's lane. With KAFKA_BROKERS set, placing an order (POST) publishes an
// order-created event to Kafka in the request's lane (the async hop to notification-service).
// Its instances compare shadow pairs: when the RuleSet mirrors order-service's requests into a
// lane (the demo's shadow act: 20% into v3, whose ORDER_CURRENCY differs), each copy's answer is
// compared with the user's by @flowtag/shadow and counted on /metrics.
import { randomUUID } from 'node:crypto'
import { credentials } from '@grpc/grpc-js'
import { FlowTagGrpc } from '@flowtag/grpc'
import { laneProducer } from '@flowtag/mq/kafkajs'
import { createShadowComparer } from '@flowtag/shadow'
import fastifyFlowTagService from '@flowtag/service/fastify'
import { callJson, HEALTH_PATH, InventoryClient, InventoryService, kafkaOf, main, messageSigning, nacosOptions, READY_PATH, checkStock, trustAndCache, type Hop, type OrderCreated } from '@flowtag/demo-kit'

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
    // Mirrored copies (a RuleSet `mirror`) are compared here, the counters on this /metrics
    // (`flowtag shadow report order-service`, the canary dashboard). `hops` names the instances
    // that served, which differ between lanes by design: declared noise, never compared.
    shadow: { comparer: ({ meter }) => createShadowComparer({ meter, ignore: ['/hops'] }) },
    // Signed lanes on every hop when FLOWTAG_TAG_KEY is set; rules and instances kept on disk.
    ...trustAndCache(env, 'order-service')
  })

  // gRPC hop: the HTTP hop's routing (discovery, the RuleSet's lanes per call, stable lane v1, and
  // the signing keys when FLOWTAG_TAG_KEY is set: inventory-service verifies them).
  const grpcLanes = new FlowTagGrpc({
    ...app.flowtag.routing,
    logger: app.log,
    // A read: a reply whose status a dying instance never sent is run again on another instance.
    idempotentMethods: [InventoryService.check],
    // A read without side effects: a mirrored copy (a shadow) may call it; any other method it refuses.
    safeMethods: [InventoryService.check]
  })
  const inventory = new InventoryClient('nacos:///inventory-service', credentials.createInsecure(), grpcLanes.clientOptions())
  app.addHook('onClose', async function closeGrpc () {
    inventory.close()
    grpcLanes.close()
  })

  // The async hop: the producer the app already uses, wrapped so that every message sent inside a
  // request carries its lane (signed like the HTTP and gRPC hops). No Kafka: orders publish nothing.
  const kafka = kafkaOf(env, `order-service-${env.SERVICE_VERSION}`)
  const producer = kafka === undefined ? undefined : laneProducer(kafka.producer(), { signing: messageSigning(env).signing })
  if (producer !== undefined) {
    app.addHook('onReady', async function connectProducer () {
      await producer.connect()
    })
    app.addHook('onClose', async function disconnectProducer () {
      await producer.disconnect()
    })
  }

  /** What `order` reads of a request (the GET and POST routes' alike). */
  interface OrderRequest {
    params: { id: string }
    query: { user?: string }
    flow: { tag?: string }
    log: { warn(obj: object, msg: string): void }
  }
  /** Stock (gRPC) and user (HTTP) in the request's lane; the answer's status and body. */
  const order = async (request: OrderRequest): Promise<{ status: number; body: Record<string, unknown> & { hops: unknown[] } }> => {
    const userId = encodeURIComponent(request.query.user ?? 'anonymous')
    const self = { service: 'order-service', version: env.SERVICE_VERSION, lane: request.flow.tag ?? null }
    let stock: { hops: Hop[] }
    try {
      stock = await checkStock(inventory, { sku: request.params.id })
    } catch (err) {
      const e = err as { code?: number; details?: string }
      request.log.warn({ grpcCode: e.code, details: e.details }, 'inventory-service call failed')
      return { status: 503, body: { error: 'inventory-service unavailable', details: e.details ?? null, hops: [self] } }
    }
    const up = await callJson(app.flowtag.fetch, `http://user-service/users/${userId}`)
    const body = up.body as Upstream
    const hops = [self, ...stock.hops, ...(body.hops ?? [])]
    if (up.status !== 200) return { status: up.status, body: { ...body, hops } }
    return { status: 200, body: { order: { id: request.params.id, user: body.user, currency: env.ORDER_CURRENCY }, hops } }
  }

  app.get<{ Params: { id: string }; Querystring: { user?: string } }>('/orders/:id', async (request, reply) => {
    const { status, body } = await order(request)
    return reply.code(status).send(body)
  })

  // Placing an order: the same hops, then order-created on Kafka (inside the request's flow, so
  // the event carries its lane). 201 with the event's id once the broker has it; 503 if it refused.
  app.post<{ Params: { id: string }; Querystring: { user?: string } }>('/orders/:id', async (request, reply) => {
    const { status, body } = await order(request)
    if (status !== 200) return reply.code(status).send(body)
    if (producer === undefined) return reply.code(201).send({ ...body, event: null })
    const event: OrderCreated = { type: 'order-created', id: randomUUID(), orderId: request.params.id, user: request.query.user ?? 'anonymous', at: Date.now() }
    try {
      await producer.send({ topic: env.ORDER_EVENTS_TOPIC, messages: [{ key: event.user, value: JSON.stringify(event) }] })
    } catch (err) {
      request.log.warn({ err: (err as Error).message, topic: env.ORDER_EVENTS_TOPIC }, 'order-created not published')
      return reply.code(503).send({ error: 'FLOWTAG_DEMO_EVENTS_UNAVAILABLE', message: `order-created not published: ${(err as Error).message}`, hops: body.hops })
    }
    return reply.code(201).send({ ...body, event: { id: event.id, topic: env.ORDER_EVENTS_TOPIC } })
  })
})
