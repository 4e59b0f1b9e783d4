// A shadow flow (a mirrored copy) never writes: a call to a method not declared free of side
// effects (`safeMethods`) ends FAILED_PRECONDITION at once, with FLOWTAG_SHADOW_WRITE_REFUSED in
// its status metadata, and is never sent. Used by the channel of clientOptions() and by the
// interceptor of fixed-address clients.
import { Metadata, status, type CallCredentials, type ChannelInterface, type StatusObject } from '@grpc/grpc-js'
import { metrics, type Counter } from '@opentelemetry/api'
import type { FlowContext } from '@flowtag/context'
import { ROUTING_ERROR_KEY } from './errors.ts'

type Call = ReturnType<ChannelInterface['createCall']>
type CallListener = Parameters<Call['start']>[1]
type MessageContext = Parameters<Call['sendMessageWithContext']>[0]

/** The code a refused shadow call carries in its status metadata (`x-flowtag-error`). */
export const SHADOW_WRITE_REFUSED = 'FLOWTAG_SHADOW_WRITE_REFUSED'

let refusedCounter: Counter | undefined
/** Shadow calls refused in this process. */
export const shadowCallCounts = { refused: 0 }

/** The status of a shadow's call to `method` when it may not be sent; undefined when it may. */
export function shadowRefusal (flow: FlowContext | undefined, method: string, safe: ReadonlySet<string>): StatusObject | undefined {
  if (flow?.shadow !== true || safe.has(method)) return undefined
  shadowCallCounts.refused++
  refusedCounter ??= metrics.getMeter('@flowtag/grpc').createCounter('flowtag.grpc.shadow_refused', { description: 'Calls of shadow flows refused (methods not declared free of side effects)' })
  refusedCounter.add(1, { 'rpc.method': method })
  const metadata = new Metadata()
  metadata.set(ROUTING_ERROR_KEY, SHADOW_WRITE_REFUSED)
  return { code: status.FAILED_PRECONDITION, details: `${SHADOW_WRITE_REFUSED}: a shadow flow may not call ${method} (not in safeMethods): shadows never write`, metadata }
}

/** A call that is never sent: it ends with `refusal` once started. */
export class RefusedCall implements Call {
  readonly #refusal: StatusObject
  #ended = false

  constructor (refusal: StatusObject) {
    this.#refusal = refusal
  }

  start (_metadata: Metadata, listener: CallListener): void {
    process.nextTick(() => {
      if (this.#ended) return
      this.#ended = true
      listener.onReceiveStatus(this.#refusal)
    })
  }

  sendMessageWithContext (context: MessageContext, _message: Buffer): void {
    context.callback?.()
  }

  startRead (): void {}
  halfClose (): void {}
  cancelWithStatus (_code: status, _details: string): void {}
  getPeer (): string { return '' }
  getCallNumber (): number { return -1 }
  setCredentials (_credentials: CallCredentials): void {}
  getAuthContext (): ReturnType<Call['getAuthContext']> { return null }
}
