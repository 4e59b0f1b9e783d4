import { AsyncLocalStorage } from 'node:async_hooks'

/** Why a request got its lane: which rule matched (if any) and a short reason. */
export interface FlowDecision {
  tag: string
  rule?: string
  reason: string
}

/** The flow of one request: its lane (tag), how it was decided, and baggage to carry on. */
export interface FlowContext {
  tag?: string
  decision?: FlowDecision
  baggage: Record<string, string>
}

const storage = new AsyncLocalStorage<FlowContext>()

export function runWithFlow<T>(flow: FlowContext, fn: () => T): T {
  return storage.run(flow, fn)
}

export function currentFlow(): FlowContext | undefined {
  return storage.getStore()
}

export function currentTag(): string | undefined {
  return storage.getStore()?.tag
}

/** Enter a flow for the rest of the current synchronous execution and what it schedules (for hooks). */
export function enterFlow(flow: FlowContext): void {
  storage.enterWith(flow)
}
