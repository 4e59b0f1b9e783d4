import { AsyncLocalStorage } from 'node:async_hooks'

/** Why a request got its lane: which rule matched (if any) and a short reason. */
export interface FlowDecision {
  tag: string
  rule?: string
  reason: string
  /**
   * Set when this request was drawn for mirroring (a rule's or the service's `mirror`): a copy is
   * to be sent, as a shadow, to the same service in `lane`. Never set inside a shadow flow.
   */
  mirror?: { lane: string }
}

/** The flow of one request: its lane (tag), how it was decided, and baggage to carry on. */
export interface FlowContext {
  tag?: string
  decision?: FlowDecision
  /** Version of the RuleSet that decided `decision` at this edge; undefined when the lane came from a tag. */
  ruleVersion?: number
  baggage: Record<string, string>
  /**
   * A shadow flow: a mirrored copy whose answer is only compared. It travels like the tag
   * (`x-flow-shadow: 1`, baggage `flowtag.shadow=1`), and flowtag's outbound HTTP, gRPC and
   * message producers refuse to write inside it.
   */
  shadow?: true
}

const storage = new AsyncLocalStorage<FlowContext>()

/**
 * Run `fn` with `flow` as the current flow: it and everything it awaits or schedules see it
 * through {@link currentFlow}. Returns what `fn` returns (a promise, if it is async).
 */
export function runWithFlow<T> (flow: FlowContext, fn: () => T): T {
  return storage.run(flow, fn)
}

/** The flow of the request being handled, or `undefined` outside one. */
export function currentFlow (): FlowContext | undefined {
  return storage.getStore()
}

/** The current flow's lane (`currentFlow()?.tag`): `undefined` outside a flow or when untagged. */
export function currentTag (): string | undefined {
  return storage.getStore()?.tag
}

/** Whether the current flow is a shadow (a mirrored copy): `currentFlow()?.shadow === true`. */
export function isShadow (): boolean {
  return storage.getStore()?.shadow === true
}
