// The flow of a consumed message: its lane headers read under the same trust policy as an HTTP
// service (@flowtag/context's tagger in service mode). A message with no IP has no CIDR to
// trust, so the policy is `always`, `never` or `{ signed }`.
import { createFlowTagger, FLOW_TAG_HEADER, BAGGAGE_KEY, type FlowContext, type FlowTagger, type SigningKey, type TagLogger } from '@flowtag/context'
import { laneCarrierOf, type MessageHeaders } from './headers.ts'

/** Which incoming lanes to honour: every plain one (`always`, the default), none, or signed ones only. */
export type MessageTrust = 'always' | 'never' | { signed: { keys: SigningKey[] } }

/** A message's flow, and whether it came with a lane that was refused (malformed, forged, untrusted). */
export interface MessageFlow {
  flow: FlowContext
  /** The message named a lane that was not honoured: it is handled as untagged (stable). */
  refused: boolean
}

export class FlowReader {
  readonly #tagger: FlowTagger

  /** @throws {ContextError} `FLOWTAG_CONTEXT_BAD_OPTION` for a bad trust policy (callers rewrap it). */
  constructor (trust: MessageTrust, otel: boolean, logger?: TagLogger) {
    this.#tagger = createFlowTagger({ mode: 'service', trust, otel, ...(logger === undefined ? {} : { logger }) })
  }

  /** Decide the flow of a message from its headers. Never throws. */
  read (headers: MessageHeaders | undefined): MessageFlow {
    const carrier = laneCarrierOf(headers)
    const flow = this.#tagger.decide({ headers: carrier })
    if (flow.tag !== undefined) return { flow, refused: false }
    const named = carrier[FLOW_TAG_HEADER] !== undefined || (typeof carrier.baggage === 'string' && carrier.baggage.includes(BAGGAGE_KEY))
    return { flow, refused: named }
  }

  /** Run `fn` inside the message's flow (AsyncLocalStorage, and the OTel context when enabled). */
  run<T> (flow: FlowContext, fn: () => T): T {
    return this.#tagger.run(flow, this.#tagger.otelContext(flow), fn)
  }
}
