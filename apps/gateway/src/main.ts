#!/usr/bin/env node
// gateway: the edge. Decides each request's lane from the live RuleSet and proxies it to
// order-service in that lane (@fastify/reply-from over the lane-aware dispatcher); the answer
// lists which version served each hop.
import type { Readable } from 'node:stream'
import replyFrom, { type FastifyReplyFromHooks } from '@fastify/reply-from'
import { dispatcherOf } from '@flowtag/outbound'
import { Dispatcher } from 'undici'
import fastifyFlowTagService from '@flowtag/service/fastify'
import { HEALTH_PATH, main, nacosOptions, READY_PATH, trustAndCache } from '@flowtag/demo-kit'

/** The gateway's own hop in an answer. */
interface GatewayHop {
  service: 'gateway'
  version: string
  lane: string | null
  rule: string | null
  /** The RuleSet version this request was decided with. */
  ruleVersion: number | null
}

/** An answer's body: order-service's (its hops first), or an error code and message. */
type UpstreamBody = Record<string, unknown> & { hops?: unknown[] }

/** What `answer` needs of a Fastify reply (reply-from's hooks type theirs for any server). */
interface AnyReply {
  request: object
  code (status: number): { type (contentType: string): { send (body: unknown): unknown } }
}

/** The receipt header is the edge's to show (with FLOWTAG_DEBUG=1), never an upstream's. */
const FALLBACK_HEADER = 'x-flowtag-fallback'

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
  // reply-from's undici. Retries of connection failures are the dispatcher's (each on another
  // instance), so reply-from's own (including its retries of 503 answers) are off.
  await app.register(replyFrom, {
    base: 'http://order-service',
    // reply-from 12 calls request() of undici 7 (the major it bundles); presented as an undici 7
    // Dispatcher, the lane-aware dispatcher costs it stock reply-from's CPU per request
    // (undici 8's request() costs ≈ 1.1–1.4×: BENCHMARKS.md, "Gateway hop").
    undici: dispatcherOf(Dispatcher, app.flowtag.dispatcher),
    disableRequestLogging: true
  })

  // Keyed by the Fastify request; read when the answer is built.
  const hops = new WeakMap<object, GatewayHop>()
  const hopOf = (request: object): GatewayHop => hops.get(request) ?? { service: 'gateway', version: env.SERVICE_VERSION, lane: null, rule: null, ruleVersion: null }

  /** Answers `body` with the gateway's hop first. */
  const answer = (reply: AnyReply, status: number, body: UpstreamBody) =>
    reply.code(status).type('application/json; charset=utf-8').send({ ...body, hops: [hopOf(reply.request), ...(body.hops ?? [])] })

  // A routing failure (no instance in the lane, discovery down) reaches reply-from as the
  // cause of its error and carries statusCode 503 and a code; anything else is a bad gateway.
  const onError: FastifyReplyFromHooks['onError'] = (reply, { error }) => {
    const cause = (error as { cause?: { code?: string; statusCode?: number; message?: string } }).cause
    const routing = typeof cause?.code === 'string' && typeof cause.statusCode === 'number'
    answer(reply, routing ? cause.statusCode! : 502, { error: routing ? cause.code : 'FLOWTAG_DEMO_UPSTREAM', message: cause?.message ?? error.message })
  }

  // GET reads an order, POST places one (order-service then publishes order-created in the lane).
  app.route<{ Params: { id: string } }>({
    method: ['GET', 'POST'],
    url: '/api/orders/:id',
    // Right after the tagging hook decided the lane: the rule version of that decision.
    onRequest: async (request) => {
      const decision = request.flow.decision
      hops.set(request, { service: 'gateway', version: env.SERVICE_VERSION, lane: request.flow.tag ?? null, rule: decision?.rule ?? null, ruleVersion: app.flowtag.rules?.version ?? null })
    },
    handler: (request, reply) => {
      const user = request.headers['x-user-id']
      const query = typeof user === 'string' ? `?user=${encodeURIComponent(user)}` : ''
      return reply.from(`/orders/${encodeURIComponent(request.params.id)}${query}`, {
        retryDelay: () => null,
        // The body is rewritten (its length changes) and the receipt header is the edge's.
        // Hop-by-hop headers (order-service's connection, keep-alive) never get here: the dispatcher
        // keeps them, so the answer carries the gateway's own and a client's Connection: close is
        // honoured; a client's hop-by-hop headers (and Expect: 100-continue) are not sent on either.
        rewriteHeaders: (headers) => {
          const { 'content-length': _length, [FALLBACK_HEADER]: _receipt, ...rest } = headers
          return rest
        },
        onResponse: (_request, reply, res) => {
          readJson(res.stream as Readable).then(
            (body) => answer(reply, res.statusCode, body),
            () => answer(reply, res.statusCode, { error: 'FLOWTAG_DEMO_BAD_UPSTREAM', message: 'non-JSON answer from order-service' })
          ).catch((err: unknown) => reply.send(err))
        },
        onError
      })
    }
  })
})

/** The upstream answer as JSON (an object); rejects on anything else. */
async function readJson (stream: Readable): Promise<UpstreamBody> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not a JSON object')
  return body as UpstreamBody
}
