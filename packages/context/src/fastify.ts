import { badOption, describeBadOption } from '@flowtag/errors'
import type { Context } from '@opentelemetry/api'
import type { FastifyPluginCallback, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { ContextError, errorCodes } from './errors.ts'
import { currentFlow, type FlowContext } from './flow.ts'
import type { FlowTagOptions } from './options.ts'
import { FlowTagger, type RequestFacts } from './tagger.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's flow: its lane (`flow.tag`), why (`flow.decision`), baggage. */
    flow: FlowContext
  }
  interface FastifyInstance {
    /** The tagger behind the plugin (stats, mode, signTag). */
    flowTagger: FlowTagger
    /**
     * @deprecated Use `flowTagger` (one letter from the service preset's `app.flowtag`, so renamed);
     * removed in the next minor version. Reading it warns once (DeprecationWarning FLOWTAG_DEP_FLOWTAG).
     */
    flowTag: FlowTagger
  }
}

/**
 * The tagger's options (a new {@link FlowTagger} is made from them), or `tagger`: an existing one
 * (a preset that shares it with its other parts: @flowtag/service). Either way `laneLogger`.
 */
export type FastifyFlowTagOptions = (FlowTagOptions | { tagger: FlowTagger }) & {
  /** Give each request's logger (`request.log`) a child with `lane` (the tag, or `'none'`). @default false */
  laneLogger?: boolean
}

// The plugin's own options; the rest are the tagger's (validated by FlowTagger).
const pluginOptions = z.object({
  tagger: z.instanceof(FlowTagger, { message: 'expected a FlowTagger' }).optional(),
  laneLogger: z.boolean().default(false)
})

// private per-request slot: the OTel context to re-enter in preValidation
const kOtelContext = Symbol('flowtag.otelContext')

interface FlowRequest extends FastifyRequest {
  [kOtelContext]: Context | null
}

let warned = false
function warnRenamed (): void {
  if (warned) return
  warned = true
  process.emitWarning('fastify.flowTag is deprecated: use fastify.flowTagger (the same FlowTagger)', { type: 'DeprecationWarning', code: 'FLOWTAG_DEP_FLOWTAG' })
}

const flowTagPlugin: FastifyPluginCallback<FastifyFlowTagOptions> = function flowTagPlugin (fastify, options, done) {
  let tagger: FlowTagger
  let laneLogger: boolean
  try {
    // register() options that belong to Fastify, not to us
    const { prefix: _prefix, logLevel: _logLevel, logSerializers: _logSerializers, tagger: given, laneLogger: lane, ...taggerOptions } = options as FastifyFlowTagOptions & Record<string, unknown>
    const own = parsePluginOptions({ tagger: given, laneLogger: lane })
    laneLogger = own.laneLogger
    if (own.tagger !== undefined && Object.keys(taggerOptions).length > 0) {
      const bad = badOption(PKG, 'tagger', `give a tagger or its options, not both (also given: ${Object.keys(taggerOptions).join(', ')})`)
      throw new ContextError(errorCodes.BAD_OPTION, bad.message, bad)
    }
    tagger = own.tagger ?? new FlowTagger(taggerOptions as FlowTagOptions)
  } catch (err) {
    done(err as Error)
    return
  }
  fastify.decorate('flowTagger', tagger)
  fastify.decorate('flowTag', {
    getter () {
      warnRenamed()
      return tagger
    }
  })
  fastify.decorateRequest('flow', null as unknown as FlowContext)
  fastify.decorateRequest(kOtelContext, null)

  fastify.addHook('onRequest', function flowTagOnRequest (request, _reply, next) {
    // the request itself carries the facts: headers, query, ip (a getter: computed only when
    // a rule or the trust policy needs it) and, with @fastify/cookie, parsed cookies
    const flow = tagger.decide(request as unknown as RequestFacts, request.log)
    request.flow = flow
    // Every log line of the request then says which lane it is in.
    if (laneLogger) request.log = request.log.child({ lane: flow.tag ?? 'none' })
    const otelCtx = tagger.otelContext(flow)
    ;(request as FlowRequest)[kOtelContext] = otelCtx ?? null
    tagger.run(flow, otelCtx, next)
  })

  // Between onRequest and the handler the request may resume in another async context: body
  // parsing on older Node versions (nodejs/node#34430), or an onRequest/preParsing hook that
  // calls done() from a callback of its own. As @fastify/request-context does, re-enter in
  // preValidation, and only when the flow was actually lost (a cheap identity check).
  fastify.addHook('preValidation', function flowTagReenter (request, _reply, next) {
    if (currentFlow() === request.flow) {
      next()
      return
    }
    tagger.run(request.flow, (request as FlowRequest)[kOtelContext] ?? undefined, next)
  })

  done()
}

const PKG = '@flowtag/context'

function parsePluginOptions (input: unknown): z.output<typeof pluginOptions> {
  const result = pluginOptions.safeParse(input)
  if (result.success) return result.data
  const bad = describeBadOption(PKG, result.error, { schema: pluginOptions })
  throw new ContextError(errorCodes.BAD_OPTION, bad.message, bad)
}

/**
 * Fastify plugin: tag each request with its lane (edge mode) or carry the incoming one (service
 * mode). Adds `request.flow` and `fastify.flowTagger` (the {@link FlowTagger}; `fastify.flowTag`
 * is its deprecated old name); hooks `onRequest`
 * (`flowTagOnRequest`) and `preValidation` (`flowTagReenter`). The rest of the request runs in the
 * flow: `currentFlow()` and the outbound dispatcher see it.
 *
 * Options (`FlowTagOptions`, validated once with zod):
 * - `mode`: `'edge'` (decide the lane from the rules) or `'service'` (carry the incoming one)
 * - `rules`: a RuleStore (live) or a RuleSet document (fixed); required in edge mode
 * - `trust`: which incoming `x-flow-tag` to honour: `'never'`, `'always'`, or
 *   `{ cidrs?: string[], signed?: { keys: { id, secret }[], cookie?, query? } }` (signed tags also
 *   from the cookie/query parameter, both @default `'flowtag'`). @default `'never'` at the edge,
 *   `'always'` in service mode
 * - `otel`: mark the active span and put the lane in OTel baggage @default true
 * - `logger`: `{ debug, warn }` for refused tags (never their values) @default none
 * - `tagger`: instead of the options above, an existing {@link FlowTagger} to use (and decorate)
 * - `laneLogger`: each request's `request.log` gets a child with `lane` @default false
 *
 * @example
 * await app.register(fastifyFlowTag, { mode: 'edge', rules: store })
 * @throws {ContextError} `FLOWTAG_CONTEXT_BAD_OPTION` (at registration) naming the field
 */
export const fastifyFlowTag = fp(flowTagPlugin, { fastify: '5.x', name: '@flowtag/context' })
export default fastifyFlowTag
export { FlowTagger }
