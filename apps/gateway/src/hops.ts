// The demo's bookkeeping at the edge, apart from the proxy a user copies (main.ts): each answer
// lists which version served each hop, the gateway's own first, and errors answer as JSON.
import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import { FALLBACK_HEADER } from '@flowtag/context'

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

/** The route's `onRequest` hook and the options of its `reply.from()` call. */
export interface GatewayHops {
  /** Right after the tagging hook decided the lane: keeps the decision and its rule version. */
  onRequest (request: FastifyRequest): Promise<void>
  replyOptions: Pick<FastifyReplyFromHooks, 'rewriteHeaders' | 'onResponse' | 'onError'>
}

/** The hop bookkeeping of a gateway that runs `version` behind the @flowtag/service preset (`app.flowtag`). */
export function gatewayHops (app: FastifyInstance, version: string): GatewayHops {
  // Keyed by the Fastify request; read when the answer is built.
  const hops = new WeakMap<object, GatewayHop>()
  const hopOf = (request: object): GatewayHop => hops.get(request) ?? { service: 'gateway', version, lane: null, rule: null, ruleVersion: null }

  /** Answers `body` with the gateway's hop first. */
  const answer = (reply: AnyReply, status: number, body: UpstreamBody) =>
    reply.code(status).type('application/json; charset=utf-8').send({ ...body, hops: [hopOf(reply.request), ...(body.hops ?? [])] })

  return {
    onRequest: async (request) => {
      const decision = request.flow.decision
      hops.set(request, { service: 'gateway', version, lane: request.flow.tag ?? null, rule: decision?.rule ?? null, ruleVersion: app.flowtag.rules?.version ?? null })
    },
    replyOptions: {
      // The body is rewritten (its length changes) and the receipt header is the edge's (shown
      // with FLOWTAG_DEBUG=1), never an upstream's. Hop-by-hop headers (order-service's
      // connection, keep-alive) never get here: the dispatcher keeps them, so the answer carries
      // the gateway's own and a client's Connection: close is honoured; a client's hop-by-hop
      // headers (and Expect: 100-continue) are not sent on either.
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
      // A routing failure (no instance in the lane, discovery down) reaches reply-from as the
      // cause of its error and carries statusCode 503 and a code; anything else is a bad gateway.
      onError: (reply, { error }) => {
        const cause = (error as { cause?: { code?: string; statusCode?: number; message?: string } }).cause
        const routing = typeof cause?.code === 'string' && typeof cause.statusCode === 'number'
        answer(reply, routing ? cause.statusCode! : 502, { error: routing ? cause.code : 'FLOWTAG_DEMO_UPSTREAM', message: cause?.message ?? error.message })
      }
    }
  }
}

/** The upstream answer as JSON (an object); rejects on anything else. */
async function readJson (stream: Readable): Promise<UpstreamBody> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not a JSON object')
  return body as UpstreamBody
}
