/**
 * The framework-free core of the Fastify plugin and the Express middleware: decide a
 * request's flow once (trusted incoming tag, signed tag, or the rules), then run the rest of
 * the request inside it.
 */
import type { Context } from '@opentelemetry/api'
import { evaluate, type CompiledRuleSet, type Decision, type Facts, type MirrorPlan } from '@flowtag/rules'
import { cookieOf, matchIp } from '@flowtag/rules/internals'
import { FLOW_TAG_HEADER, SHADOW_HEADER } from './codec.ts'
import { runWithFlow, type FlowContext, type FlowDecision } from './flow.ts'
import { countShadow, countTag, otelContextFor, otelContextManagerActive, withOtelContext } from './otel.ts'
import { resolveOptions, type FlowTagOptions, type ResolvedOptions, type TagLogger } from './options.ts'
import { readIncoming, readShadowMarker } from './propagation.ts'
import { signTag, verifySignedTag } from './signing.ts'
import { ContextError, errorCodes } from './errors.ts'
import { armTagLoss, setTagLossMode } from './tag-loss.ts'

/** What the tagger reads from a request. `query` and `ip` may be getters: read only if needed. */
export interface RequestFacts extends Facts {
  headers: Readonly<Record<string, string | string[] | undefined>>
  /** The request's method (upper case, as Node gives it): a mirror copies only the methods it lists. */
  method?: string
}

export interface FlowTagStats {
  /** Requests that carried a valid signed tag. */
  signed: number
  /** Requests whose plain incoming tag was trusted. */
  trusted: number
  /** Requests decided by the rules. */
  evaluated: number
  /** Requests left without a tag (no trusted tag, no rules in force). */
  untagged: number
  /** Incoming tags dropped: malformed, bad or expired signature. */
  dropped: number
  /** Incoming tags ignored because the trust policy does not allow them. */
  ignored: number
  /** Requests also evaluated by a shadow RuleSet (one more evaluate() each; never routed by it). */
  shadowed: number
  /** Requests drawn for mirroring (`decision.mirror` set). */
  mirrored: number
  /** Requests that arrived as shadows (a trusted `x-flow-shadow` marker). */
  shadows: number
}

/**
 * The framework-free core under the Fastify plugin and the Express middleware: decides each
 * request's flow once (a signed tag, then a trusted incoming tag, then the rules), and runs the
 * rest of the request inside it.
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
export class FlowTagger {
  readonly mode: 'edge' | 'service'
  readonly #o: ResolvedOptions
  readonly #stats: FlowTagStats = { signed: 0, trusted: 0, evaluated: 0, untagged: 0, dropped: 0, ignored: 0, shadowed: 0, mirrored: 0, shadows: 0 }

  constructor (options: FlowTagOptions) {
    this.#o = resolveOptions(options)
    this.mode = this.#o.mode
    // a process that tags requests is one whose outbound calls should carry a flow
    if (this.#o.tagLoss === undefined) armTagLoss()
    else setTagLossMode(this.#o.tagLoss)
  }

  get stats (): Readonly<FlowTagStats> { return { ...this.#stats } }
  get otel (): boolean { return this.#o.otel }

  /**
   * Decide the flow of one request from its facts (`{ headers, query?, cookies?, ip? }`): returns
   * `{ tag?, decision?: { tag, rule?, reason }, baggage }`. Never throws: a failure leaves the
   * request untagged (logged at warn).
   */
  decide (req: RequestFacts, log: TagLogger | undefined = this.#o.logger): FlowContext {
    try {
      const flow = this.#decide(req, log)
      if (flow.shadow === true) this.#stats.shadows++
      return flow
    } catch (err) {
      log?.warn({ err }, 'flowtag: could not decide a lane; request left untagged')
      this.#stats.untagged++
      return { baggage: {} }
    }
  }

  #decide (req: RequestFacts, log: TagLogger | undefined): FlowContext {
    const o = this.#o
    const headers = req.headers
    const header = headers[FLOW_TAG_HEADER]
    let headerHandled = false

    if (o.signed !== undefined) {
      let token: unknown
      let source = 'header'
      if (typeof header === 'string' && header.includes('~')) {
        token = header
        headerHandled = true
      } else {
        token = cookieOf(req, o.signed.cookie)
        source = 'cookie'
        if (token === undefined) {
          const q = req.query?.[o.signed.query]
          token = Array.isArray(q) ? q[0] : q
          source = 'query'
        }
      }
      if (token !== undefined) {
        const r = verifySignedTag(token, o.signed.keys)
        if ('lane' in r) {
          this.#stats.signed++
          const decision: FlowDecision = { tag: r.lane, reason: `signed tag (key ${r.keyId}, from ${source})` }
          // the shadow marker is honoured where the tag is: with a valid signed tag
          if (readShadowMarker(headers)) return { tag: r.lane, decision, baggage: {}, shadow: true }
          return this.#mirror({ tag: r.lane, decision, baggage: {} }, req, o.rules?.())
        }
        this.#refuse(log, 'dropped', r.refused, source, token)
      }
    }

    let baggage: Record<string, string> = {}
    if ((header !== undefined && !headerHandled) || headers.baggage !== undefined || headers[SHADOW_HEADER] !== undefined) {
      const trusted = o.trustAll || (o.trustCidrs !== undefined && matchIp(o.trustCidrs, req.ip) >= 0)
      if (trusted) {
        const incoming = readIncoming(headers)
        baggage = incoming.baggage
        if (incoming.invalid) this.#refuse(log, 'dropped', 'malformed', 'x-flow-tag/baggage', header)
        if (incoming.tag !== undefined) {
          this.#stats.trusted++
          const flow: FlowContext = { tag: incoming.tag, decision: { tag: incoming.tag, reason: 'trusted incoming tag' }, baggage }
          if (incoming.shadow) {
            flow.shadow = true
            return flow
          }
          return this.#mirror(flow, req, o.rules?.())
        }
        if (incoming.shadow) return this.#shadowUntagged(o.rules?.(), req, baggage)
      } else if (header !== undefined && !headerHandled) {
        this.#refuse(log, 'ignored', 'untrusted', 'x-flow-tag', header)
      }
    }

    const compiled = o.rules?.()
    if (compiled !== undefined) {
      this.#stats.evaluated++
      const shadow = compiled.shadow
      if (shadow !== undefined && o.otel) {
        // counted, never routed: the request keeps the live decision. A request without a sticky
        // key is split at random: both evaluations take the same draw, so the shadow's predicted
        // move compares the two rule sets, not two dice (a 10% -> 40% split moves no one back).
        // (The facts may be a framework's request object, read through getters: it is lent the
        // draw for the two calls, not copied.)
        const own = req.random
        const draw = (own ?? Math.random)()
        req.random = () => draw
        let decision: Decision
        try {
          decision = evaluate(compiled, req)
          this.#stats.shadowed++
          countShadow(decision, evaluate(shadow, req), compiled.version, shadow.version)
        } finally {
          req.random = own
        }
        // the mirror's draw is its own, not the split's
        return this.#mirror({ tag: decision.tag, decision, ruleVersion: compiled.version, baggage }, req, compiled)
      }
      const decision = evaluate(compiled, req)
      return this.#mirror({ tag: decision.tag, decision, ruleVersion: compiled.version, baggage }, req, compiled)
    }
    this.#stats.untagged++
    // no rules (service mode) or none in force yet (store still empty): no lane; outbound uses stable
    return { baggage }
  }

  /** A trusted shadow marker without a tag: the rules (if any) give the lane; it stays a shadow. */
  #shadowUntagged (compiled: CompiledRuleSet | undefined, req: RequestFacts, baggage: Record<string, string>): FlowContext {
    if (compiled === undefined) return { baggage, shadow: true }
    this.#stats.evaluated++
    const decision = evaluate(compiled, req)
    return { tag: decision.tag, decision, ruleVersion: compiled.version, baggage, shadow: true }
  }

  /**
   * Draw the mirror of a decided (non-shadow) request: the deciding rule's mirror, else the
   * service entry's (`service` option). One random draw per eligible request; a mirror into
   * the request's own lane copies nothing. Allocates only for a request drawn.
   */
  #mirror (flow: FlowContext, req: RequestFacts, compiled: CompiledRuleSet | undefined): FlowContext {
    if (compiled === undefined || !compiled.hasMirrors) return flow
    const decision = flow.decision!
    let plan: MirrorPlan | undefined
    if (compiled.mirrors.size > 0 && decision.rule !== undefined) plan = compiled.mirrors.get(decision.rule)
    if (plan === undefined && this.#o.service !== undefined) plan = compiled.services.get(this.#o.service)?.mirror
    if (plan === undefined || plan.percent <= 0 || plan.lane === flow.tag) return flow
    // a request marked as a shadow is never copied again, even where its marker is not trusted
    // (an edge that does not trust its mirroring peers): no copy of a copy, whatever the trust
    if (req.headers[SHADOW_HEADER] !== undefined) return flow
    const method = req.method
    if (typeof method !== 'string' || !plan.methods.has(method)) return flow
    if (plan.percent < 100 && (req.random ?? Math.random)() * 100 >= plan.percent) return flow
    this.#stats.mirrored++
    flow.decision = { ...(decision as Decision), mirror: { lane: plan.lane } }
    return flow
  }

  #refuse (log: TagLogger | undefined, outcome: 'dropped' | 'ignored', reason: string, source: string, value: unknown): void {
    this.#stats[outcome]++
    if (this.#o.otel) countTag(`${outcome}:${reason}`, source)
    // the value itself is never logged: only its shape
    log?.debug({ flowtag: { outcome, reason, source, length: typeof value === 'string' ? value.length : -1 } }, 'flowtag: incoming tag refused')
  }

  /**
   * Sign a lane with the first configured key (the one that signs; the others only verify),
   * e.g. to hand a tester a link or a cookie. Needs `trust.signed`.
   *
   * @param ttlSeconds lifetime in seconds (an integer, at most 366 days)
   * @throws {ContextError} `FLOWTAG_CONTEXT_SIGNING` without signing keys, for an invalid lane or ttl
   */
  signTag (lane: string, ttlSeconds: number): string {
    const first = this.#o.signed?.keys.entries().next().value
    if (first === undefined) throw new ContextError(errorCodes.SIGNING, 'signTag: this tagger has no trust.signed keys')
    return signTag(lane, ttlSeconds, { id: first[0], secret: first[1] })
  }

  /**
   * The OTel context to run the request in, if enabled: the lane in its baggage, and on the
   * active span `flowtag.lane`, plus `flowtag.rule` (the matched rule's name) and
   * `flowtag.rule_version` when the rules decided the lane.
   */
  otelContext (flow: FlowContext): Context | undefined {
    return this.#o.otel && flow.tag !== undefined && otelContextManagerActive() ? otelContextFor(flow.tag, flow.decision?.rule, flow.ruleVersion) : undefined
  }

  /** Run `fn` inside the flow (AsyncLocalStorage) and, when given, the OTel context. */
  run<T> (flow: FlowContext, otelCtx: Context | undefined, fn: () => T): T {
    return otelCtx === undefined ? runWithFlow(flow, fn) : withOtelContext(otelCtx, () => runWithFlow(flow, fn))
  }
}

/**
 * Create the core tagger: the same as `new FlowTagger(options)`.
 *
 * @deprecated Use `new FlowTagger(options)`, the one constructor form of flowtag's entry classes
 * (as `new NacosClient(...)`, `new FlowTagDispatcher(...)`); removed in the next minor version.
 * @throws {ContextError} `FLOWTAG_CONTEXT_BAD_OPTION` naming the field when an option is invalid
 */
export function createFlowTagger (options: FlowTagOptions): FlowTagger {
  return new FlowTagger(options)
}
