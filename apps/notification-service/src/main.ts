#!/usr/bin/env node
// notification-service: the async hop. Consumes order-service's order-created events from Kafka
// in lanes (@flowtag/mq, permissive): this instance (SERVICE_VERSION) handles its lane's events,
// the stable one (v1) also those of lanes with no live consumer. Each handler runs inside its
// event's flow, so the call it makes to user-service (by service name) stays in the event's lane.
// HTTP serves only probes and /metrics; nobody calls this service by name.
import fastifyFlowTagService from '@flowtag/service/fastify'
import { KafkaLaneConsumer } from '@flowtag/mq/kafkajs'
import { serviceLanes } from '@flowtag/rules'
import { callJson, HEALTH_PATH, kafkaOf, main, messageSigning, nacosOptions, READY_PATH, trustAndCache, type Hop, type OrderCreated } from '@flowtag/demo-kit'

await main('notification-service', async (app, env) => {
  const kafka = kafkaOf(env, `notification-service-${env.SERVICE_VERSION}`)
  if (kafka === undefined) throw Object.assign(new Error('KAFKA_BROKERS is not set: notification-service consumes order-created events from Kafka'), { code: 'FLOWTAG_DEMO_BAD_ENV' })

  // Outbound calls in the event's lane, the RuleSet's lanes, the Nacos client. No HTTP
  // registration: the consumer below registers itself (with its group, as a consumer instance).
  await app.register(fastifyFlowTagService, {
    service: 'notification-service',
    version: env.SERVICE_VERSION,
    nacos: nacosOptions(env),
    rules: { dataId: env.RULES_DATA_ID, group: env.RULES_GROUP },
    registration: false,
    outbound: { stableLane: 'v1' },
    healthPath: HEALTH_PATH,
    readyPath: READY_PATH,
    ...trustAndCache(env, 'notification-service')
  })

  const { trust } = messageSigning(env)
  let consumer: KafkaLaneConsumer | undefined
  // Registered with the HTTP port (probes, /metrics), known once listening. Fastify runs onListen
  // after listen() resolved: the `consuming` line says when events are handled.
  app.addHook('onListen', async function startConsumer () {
    const address = app.server.address()
    if (typeof address !== 'object' || address === null) throw new Error('not listening on a TCP port')
    try {
      consumer = new KafkaLaneConsumer({
        kafka,
        groupId: env.KAFKA_GROUP,
        topics: [env.ORDER_EVENTS_TOPIC],
        service: 'notification-service',
        lane: env.SERVICE_VERSION,
        stableLane: 'v1',
        lanes: (service) => serviceLanes(app.flowtag.rules?.compiled, service),
        // A lane's events are honoured only when order-service signed them (FLOWTAG_TAG_KEY).
        trust,
        // The topic is the app's own: a new group reads what it retains.
        fromBeginning: true,
        // sessionTimeout is how long a SIGKILLed consumer's partitions wait for another member.
        consumer: { sessionTimeout: env.KAFKA_SESSION_TIMEOUT_MS, heartbeatInterval: 500, rebalanceTimeout: 10_000, maxWaitTimeInMs: 200 },
        nacos: app.flowtag.nacos,
        registration: { port: address.port, ip: address.address, env: env.DEPLOY_ENV },
        logger: app.log,
        handoverTimeoutMs: 20_000,
        resyncMs: 2000
      })
      await consumer.run(async ({ message, flow, fallback }) => {
        const event = JSON.parse(String(message.value)) as OrderCreated
        const up = await callJson(app.flowtag.fetch, `http://user-service/users/${encodeURIComponent(event.user)}`)
        // Failing the message makes Kafka deliver it again: an event is never dropped.
        if (up.status !== 200) throw new Error(`user-service answered ${up.status} for event ${event.id}`)
        const userHop = ((up.body as { hops?: Hop[] }).hops ?? [])[0]
        app.log.info({ eventId: event.id, orderId: event.orderId, eventLane: flow.tag ?? null, fallback, userService: userHop ?? null }, 'order-created handled')
      })
    } catch (err) {
      app.log.error({ err }, 'the consumer did not start')
      process.exit(1)
    }
    app.log.info({ group: consumer.group, topic: env.ORDER_EVENTS_TOPIC }, 'consuming')
  })
  // Hand the lane over first (commit, leave the group, deregister), then close the app.
  app.addHook('preClose', async function stopConsumer () {
    await consumer?.stop()
  })
})
