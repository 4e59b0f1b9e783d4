import type { NextFunction, Request, Response } from 'express'
import type { FlowContext } from './flow.ts'
import type { FlowTagOptions } from './options.ts'
import { FlowTagger, type RequestFacts } from './tagger.ts'

declare global {
  // Express's own augmentation point (@types/express-serve-static-core merges it into Request)
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** This request's flow: its lane (`flow.tag`), why (`flow.decision`), baggage. */
      flow: FlowContext
    }
  }
}

export type ExpressFlowTagOptions = FlowTagOptions

/**
 * The facts a tagger decides an Express request by (`tagger.decide(new ExpressFacts(req))`),
 * read lazily (Express 5 parses `query` on each access); a class, so each request costs one
 * object and no closures. Used by `flowTag()` and by @flowtag/service's Express preset.
 */
export class ExpressFacts implements RequestFacts {
  readonly headers: Request['headers']
  readonly #req: Request
  constructor (req: Request) {
    this.headers = req.headers
    this.#req = req
  }

  get query (): Record<string, unknown> { return this.#req.query as Record<string, unknown> }
  get ip (): string | undefined { return this.#req.ip }
  get method (): string { return this.#req.method }
}

export interface FlowTagMiddleware {
  (req: Request, res: Response, next: NextFunction): void
  /** The tagger behind the middleware (stats, mode). */
  tagger: FlowTagger
}

/**
 * Express middleware with the Fastify plugin's semantics: mount it early with `app.use()`.
 * The rest of the chain (body parsers, routes) runs inside the flow; Express 5's body
 * parsers keep the async context, whether mounted before or after this middleware. Sets `req.flow`.
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
 *
 * @throws {ContextError} `FLOWTAG_CONTEXT_BAD_OPTION` naming the field when an option is invalid
 */
export function flowTag (options: ExpressFlowTagOptions): FlowTagMiddleware {
  const tagger = new FlowTagger(options)
  const middleware = function flowTagMiddleware (req: Request, _res: Response, next: NextFunction): void {
    const flow = tagger.decide(new ExpressFacts(req))
    req.flow = flow
    tagger.run(flow, tagger.otelContext(flow), next)
  } as FlowTagMiddleware
  middleware.tagger = tagger
  return middleware
}

export default flowTag
export { FlowTagger }
