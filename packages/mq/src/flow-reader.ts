// The flow of a consumed message: its lane headers read under the same trust policy as an HTTP
// service (@flowtag/context's tagger in service mode). A message with no IP has no CIDR to
// trust, so the policy is `always`, `never` or `{ signed }`.
import { FlowTagger, FLOW_TAG_HEADER, BAGGAGE_KEY, type FlowContext, type SigningKey, type TagLogger } from '@flowtag/context'
import { laneCarrierOf, type MessageHeaders } from './headers.ts'

/** Which incoming lanes to honour: every plain one (`always`, the default), none, or signed ones only. */
export type MessageTrust = 'always' | 'never' | { signed: { keys: SigningKey[] } }

/** A message's flow, and whether it came with a lane that was refused (malformed, forged, untrusted). */
export interface MessageFlow {
  flow: FlowContext
  /** The message named a lane that was not honoured: it is handled as untagged (stable). */
  refused: boolean
}

/** Distinct (x-flow-tag, baggage) pairs whose trusted plain decision is remembered; past it, the memory starts over. */
const MEMO_SIZE = 256

export class FlowReader {
  readonly #tagger: FlowTagger
  /** `always` trust: a plain lane header decides the same flow every time, so it is decided once per distinct value. */
  readonly #memo: Map<string, FlowContext> | undefined

  /** @throws {ContextError} `FLOWTAG_CONTEXT_BAD_OPTION` for a bad trust policy (callers rewrap it). */
  constructor (trust: MessageTrust, otel: boolean, logger?: TagLogger) {
    this.#tagger = new FlowTagger({ mode: 'service', trust, otel, ...(logger === undefined ? {} : { logger }) })
    this.#memo = trust === 'always' ? new Map() : undefined
  }

  /** Decide the flow of a message from its headers. Never throws. */
  read (headers: MessageHeaders | undefined): MessageFlow {
    const carrier = laneCarrierOf(headers)
    const tag = carrier[FLOW_TAG_HEADER]
    const bag = carrier.baggage
    // no lane header at all (most traffic outside a canary): untagged, as the tagger would decide
    // in service mode (no rules), without asking it
    if (tag === undefined && bag === undefined) return { flow: { baggage: {} }, refused: false }
    // the key says where the tag ends (its length), so no two header pairs share one
    const key = this.#memo !== undefined && (tag === undefined || typeof tag === 'string') && (bag === undefined || typeof bag === 'string')
      ? `${tag === undefined ? -1 : tag.length}:${tag ?? ''}${bag === undefined ? '' : `\n${bag}`}`
      : undefined
    const known = key === undefined ? undefined : this.#memo?.get(key)
    // a copy: the handler owns its flow (and may add baggage to it)
    if (known !== undefined) return { flow: { ...known, baggage: { ...known.baggage } }, refused: false }
    const refusedBefore = key === undefined ? 0 : this.#refusals()
    const flow = this.#tagger.decide({ headers: carrier })
    if (flow.tag !== undefined) {
      // remembered only when nothing in it was refused (a refusal is counted and logged per message)
      if (key !== undefined && this.#refusals() === refusedBefore) this.#remember(key, flow)
      return { flow, refused: false }
    }
    const named = tag !== undefined || (typeof bag === 'string' && bag.includes(BAGGAGE_KEY))
    return { flow, refused: named }
  }

  #refusals (): number {
    const s = this.#tagger.stats
    return s.dropped + s.ignored
  }

  #remember (key: string, flow: FlowContext): void {
    const memo = this.#memo as Map<string, FlowContext>
    if (memo.size >= MEMO_SIZE) memo.clear()
    memo.set(key, { ...flow, baggage: { ...flow.baggage } })
  }

  /** Run `fn` inside the message's flow (AsyncLocalStorage, and the OTel context when enabled). */
  run<T> (flow: FlowContext, fn: () => T): T {
    return this.#tagger.run(flow, this.#tagger.otelContext(flow), fn)
  }
}
