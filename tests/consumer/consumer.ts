// Type-checked (never run) by the consumer test under moduleResolution nodenext and bundler:
// every public entry point resolves with its types from the installed tarballs.
import Fastify from 'fastify'
import express from 'express'
import { FlowTagError, FlowtagError, isFlowTagError, isFlowtagError } from '@flowtag/errors'
import { NacosClient, NacosError, errorCodes as nacosCodes, type NacosClientOptions } from '@flowtag/nacos'
import fastifyNacos from '@flowtag/nacos/fastify'
import { currentTag, runWithFlow, ContextError, type FlowContext } from '@flowtag/context'
import { fastifyFlowTag } from '@flowtag/context/fastify'
import { flowTag } from '@flowtag/context/express'
import { createRuleStore, staticSource, evaluate, compileRuleSet, parseRuleSet, RulesError, type RuleSet } from '@flowtag/rules'
import { FlowTagDispatcher, OutboundError, errorCodes as outboundCodes } from '@flowtag/outbound'
import fastifyOutbound from '@flowtag/outbound/fastify'
import { startNacosDevServer, DevServerError, type NacosDevServer } from '@flowtag/nacos-dev-server'
import { createFlowTagService, errorCodes as serviceCodes, type FlowTagService } from '@flowtag/service'
import fastifyFlowTagService from '@flowtag/service/fastify'
import { flowTagService } from '@flowtag/service/express'
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js'
import { FlowTagGrpc, GrpcError } from '@flowtag/grpc'
import { FlowTagGrpcServer } from '@flowtag/grpc/server'
import { parseCanarySpec, CanaryError, type CanarySpec } from '@flowtag/canary'
import { Kafka } from 'kafkajs'
import amqplib from 'amqplib'
import { laneHeaders, MqError, type ConsumerStats } from '@flowtag/mq'
import { KafkaLaneConsumer, laneProducer, type KafkaLaneMessage } from '@flowtag/mq/kafkajs'
import { AmqpLaneConsumer, laneChannel } from '@flowtag/mq/amqplib'
import { createShadowComparer, ShadowError, type ShadowComparer, type ShadowPair, type ShadowReport } from '@flowtag/shadow'
import { parseBaggage, recordFallback, type FallbackReason } from '@flowtag/context/internals'
import { candidateWeight, TERMINAL } from '@flowtag/canary/internals'
import { RuleStore } from '@flowtag/rules'

const options: NacosClientOptions = { serverAddr: '127.0.0.1:8848' }
const client = new NacosClient(options)
const app = Fastify()
await app.register(fastifyNacos, { client, service: 'typed', version: 'v1' })
await app.register(fastifyFlowTag, { mode: 'service' })
await app.register(fastifyOutbound, { discovery: app.nacos.discovery, stableLane: 'v1' })
app.get('/', async (request) => ({ lane: request.flow.tag, ready: app.nacos.ready, pools: app.outbound.snapshot('catalog') }))

const web = express()
web.use(flowTag({ mode: 'service' }))

const rules: RuleSet = parseRuleSet('{"version":1,"rules":[]}', 'typed')
const decision: string = evaluate(compileRuleSet(rules), { headers: {} }).tag
const store = createRuleStore({ source: staticSource(rules) })
const flow: FlowContext = { tag: 'v2', baggage: {} }
const seen: string | undefined = runWithFlow(flow, () => currentTag())
const dispatcher = new FlowTagDispatcher({ discovery: app.nacos.discovery, stableLane: 'v1' })
const server: NacosDevServer = await startNacosDevServer({ port: 0 })

function code (err: unknown): string | undefined {
  if (err instanceof NacosError) return err.code satisfies (typeof nacosCodes)[keyof typeof nacosCodes]
  if (err instanceof OutboundError) return err.code satisfies (typeof outboundCodes)[keyof typeof outboundCodes]
  if (err instanceof RulesError || err instanceof ContextError || err instanceof DevServerError) return err.code
  return isFlowtagError(err) ? (err satisfies FlowtagError).code : undefined
}

// The preset: one register call (Fastify), one middleware with its lifecycle (Express).
const edge = Fastify()
await edge.register(fastifyFlowTagService, { service: 'edge', mode: 'edge', nacos: { serverAddr: '127.0.0.1:8848' }, rules: { dataId: 'flowtag-rules.json' } })
edge.get('/', async (request) => {
  const res = await edge.flowtag.fetch('http://user-service/users/1')
  return { lane: request.flow.tag, body: await res.json() }
})
const ft = flowTagService({ service: 'user-service', version: 'v2', nacos: { serverAddr: '127.0.0.1:8848' } })
web.use(ft)
const core: FlowTagService = createFlowTagService({ service: 'billing', nacos: { serverAddr: '127.0.0.1:8848' } })
const badOption: string = serviceCodes.BAD_OPTION

// gRPC in lanes: a channel option set for any generated client, and a lane-aware server.
// A generated client's method definitions mark the methods that are safe to run twice.
const Inventory = makeGenericClientConstructor({
  check: { path: '/demo.Inventory/Check', requestStream: false, responseStream: false, requestSerialize: (v: object) => Buffer.from(JSON.stringify(v)), requestDeserialize: (b: Buffer) => JSON.parse(String(b)) as object, responseSerialize: (v: object) => Buffer.from(JSON.stringify(v)), responseDeserialize: (b: Buffer) => JSON.parse(String(b)) as object }
}, 'Inventory')
const grpcLanes = new FlowTagGrpc({ discovery: app.nacos.discovery, stableLane: 'v1', idempotentMethods: Object.values(Inventory.service) })
const channel = { target: 'nacos:///inventory-service', credentials: credentials.createInsecure(), options: grpcLanes.clientOptions() }
const grpcServer = new FlowTagGrpcServer({ nacos: client, registration: { service: 'inventory-service', version: 'v1' } })
const spec: CanarySpec = parseCanarySpec({ service: 'order-service', candidate: 'v2', stable: 'v1' })
const codeOf = (err: unknown) => (err instanceof GrpcError || err instanceof CanaryError ? err.code : undefined)

// Message lanes: the kafkajs producer and consumer, the amqplib channel and consumer.
const kafka = new Kafka({ brokers: ['127.0.0.1:9092'] })
const producer = laneProducer(kafka.producer())
const kafkaConsumer = new KafkaLaneConsumer({ kafka, groupId: 'order-events', topics: ['orders'], service: 'order-worker', lane: 'v2', stableLane: 'v1', nacos: client, registration: { port: 9464 } })
await kafkaConsumer.run(async ({ message, flow, fallback }: KafkaLaneMessage) => { void [message.value, flow.tag, fallback] })
const connection = await amqplib.connect('amqp://127.0.0.1')
const laneCh = laneChannel(await connection.createConfirmChannel())
const amqpConsumer = new AmqpLaneConsumer({ connection, exchange: 'orders', queue: 'order-events', service: 'order-worker', discovery: app.nacos.discovery })
await amqpConsumer.run(({ message, flow }) => { void [message.content, flow.tag] })
const stats: ConsumerStats = kafkaConsumer.stats
const lane: Record<string, string> = laneHeaders({}, flow)
const mqCode = (err: unknown) => (err instanceof MqError ? err.code : undefined)

// Shadow comparison: the comparer a mirror sender is given, and its report.
const comparer = createShadowComparer({ headers: ['x-version'], ignore: ['/**/updatedAt'], learn: { samples: 20 } })
const answer = { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from('{}'), truncated: false }
const shadowPair: ShadowPair = { service: 'user-service', route: '/users/:id', method: 'GET', lane: 'v2', primaryLane: 'v1', primary: answer, mirror: answer }
const asComparer: ShadowComparer = comparer
asComparer.compare(shadowPair)
const shadowReport: ShadowReport = comparer.report({ top: 5 })
const shadowCode = (err: unknown) => (err instanceof ShadowError ? err.code : undefined)

export { amqpConsumer, laneCh, lane, mqCode, producer, stats }
export { shadowCode, shadowReport }

// One casing (FlowTagError; the old FlowtagError is the same class), one constructor form
// (new RuleStore), and the internals subpaths.
const newCode = (err: unknown) => (isFlowTagError(err) ? (err satisfies FlowTagError).code : undefined)
const sameClass: typeof FlowTagError = FlowtagError
const newStore: RuleStore = new RuleStore({ source: staticSource(rules) })
const reason: FallbackReason = 'no-instance'
recordFallback(flow, 'user-service', 'v2', 'v1', reason)
const members: number = parseBaggage('flowtag.lane=v2').length
const weight: number = candidateWeight(rules, 'v2')
const finished: boolean = TERMINAL.has('promoted')
export { finished, members, newCode, newStore, sameClass, weight }
export { badOption, channel, code, codeOf, core, decision, dispatcher, grpcServer, seen, server, spec, store }
