// The client side of every call, below grpc-js's interceptors: a channel wrapper whose calls
// write the caller's flow into the metadata (`x-flow-tag`, `baggage`, the tag signed when `sign`
// is set) and retry a call that ended UNAVAILABLE before any response message on another
// instance of its lane (the picker skips the addresses listed in `x-flowtag-tried`).
// It does what the flow interceptor does, without grpc-js's interceptor chain (an
// InterceptingCall, listener wrappers and closures per call): one object per call.
import { Channel, status, type CallCredentials, type ChannelCredentials, type ChannelInterface, type ClientOptions, type Deadline, type Metadata, type StatusObject } from '@grpc/grpc-js'
import { currentFlow, type FlowContext } from '@flowtag/context'
import { signer, writeFlow } from './client-interceptor.ts'
import { ROUTING_ERROR_KEY } from './errors.ts'
import { TRIED_KEY } from './keys.ts'
import type { ResolvedGrpcOptions } from './options.ts'
import { RefusedCall, shadowRefusal } from './shadow-guard.ts'

type Call = ReturnType<ChannelInterface['createCall']>
type CallListener = Parameters<Call['start']>[1]
type MessageContext = Parameters<Call['sendMessageWithContext']>[0]
type ParentCall = Parameters<ChannelInterface['createCall']>[3]

/** What every call of a FlowChannel needs, built once per FlowTagGrpc. */
export interface FlowCallConfig {
  readonly signed: ((lane: string) => string) | undefined
  readonly maxRetries: number
  /** Paths of the idempotent unary methods, whose replies are held until their status. */
  readonly holdReplies: ReadonlySet<string>
  /** Paths of the methods a shadow flow may call (free of side effects). */
  readonly safeMethods: ReadonlySet<string>
}

export function flowCallConfig (o: ResolvedGrpcOptions): FlowCallConfig {
  return { signed: signer(o), maxRetries: o.maxRetries, holdReplies: new Set(o.idempotentMethods.map((m) => m.path)), safeMethods: new Set(o.safeMethods.map((m) => m.path)) }
}

/**
 * `channelFactoryOverride` for a client: the channel grpc-js would make (or `factory`'s), wrapped.
 */
export function flowChannelFactory (config: FlowCallConfig, factory?: ClientOptions['channelFactoryOverride']): NonNullable<ClientOptions['channelFactoryOverride']> {
  return (target: string, credentials: ChannelCredentials, options: ClientOptions) => new FlowChannel(factory === undefined ? new Channel(target, credentials, options) : factory(target, credentials, options), config)
}

/** A grpc-js channel whose calls carry the flow of their caller and retry on another instance. */
export class FlowChannel implements ChannelInterface {
  readonly inner: ChannelInterface
  readonly config: FlowCallConfig

  constructor (inner: ChannelInterface, config: FlowCallConfig) {
    this.inner = inner
    this.config = config
  }

  close (): void {
    this.inner.close()
  }

  getTarget (): string {
    return this.inner.getTarget()
  }

  getConnectivityState (tryToConnect: boolean): ReturnType<ChannelInterface['getConnectivityState']> {
    return this.inner.getConnectivityState(tryToConnect)
  }

  watchConnectivityState (...args: Parameters<ChannelInterface['watchConnectivityState']>): void {
    this.inner.watchConnectivityState(...args)
  }

  getChannelzRef (): ReturnType<ChannelInterface['getChannelzRef']> {
    return this.inner.getChannelzRef()
  }

  /** Called by grpc-js in the caller's async context: the flow is captured here. */
  createCall (method: string, deadline: Deadline, host: string | null | undefined, parent: ParentCall, propagateFlags: number | null | undefined): Call {
    const flow = currentFlow()
    if (flow?.shadow === true) {
      // a shadow never writes: a method not declared safe is never sent
      const refusal = shadowRefusal(flow, method, this.config.safeMethods)
      if (refusal !== undefined) return new RefusedCall(refusal)
    }
    return new FlowCall(this, this.inner.createCall(method, deadline, host, parent, propagateFlags), flow, method, deadline, host, parent, propagateFlags)
  }
}

/**
 * One call: it is its attempt's listener, so a call costs this object and nothing else. A call is
 * retried when it ends UNAVAILABLE (not a routing error) before any response message reached the
 * caller, after it sent at most one request message and half-closed (its whole request is known),
 * up to `maxRetries` times, each attempt on an instance not tried yet. When the retry finds no
 * other instance, the caller gets the last attempt's own failure, not the routing error.
 * The reply of an idempotent unary method is held until its status: grpc-js servers write a reply
 * and its status apart, and a connection lost between the two would otherwise fail a call that
 * can safely run again.
 */
class FlowCall implements Call {
  readonly #channel: FlowChannel
  readonly #flow: FlowContext | undefined
  readonly #method: string
  readonly #deadline: Deadline
  readonly #host: string | null | undefined
  readonly #parent: ParentCall
  readonly #propagateFlags: number | null | undefined
  #call: Call
  #listener: CallListener | null = null
  #metadata: Metadata | null = null
  #credentials: CallCredentials | null = null
  #message: Buffer | null = null
  #messages = 0
  #halfClosed = false
  #reading = false
  #responded = false
  #headersPassed = false
  #cancelled = false
  #attempts = 0
  #tried: string[] | null = null
  #lastFailure: StatusObject | null = null
  readonly #hold: boolean
  #held: { message: unknown } | null = null

  constructor (channel: FlowChannel, call: Call, flow: FlowContext | undefined, method: string, deadline: Deadline, host: string | null | undefined, parent: ParentCall, propagateFlags: number | null | undefined) {
    this.#channel = channel
    this.#call = call
    this.#flow = flow
    this.#method = method
    this.#deadline = deadline
    this.#host = host
    this.#parent = parent
    this.#propagateFlags = propagateFlags
    this.#hold = channel.config.holdReplies.size > 0 && channel.config.holdReplies.has(method)
  }

  start (metadata: Metadata, listener: CallListener): void {
    writeFlow(metadata, this.#flow, this.#channel.config.signed)
    this.#metadata = metadata
    this.#listener = listener
    this.#call.start(metadata, this)
  }

  sendMessageWithContext (context: MessageContext, message: Buffer): void {
    this.#messages++
    this.#message = this.#messages === 1 ? message : null
    this.#call.sendMessageWithContext(context, message)
  }

  startRead (): void {
    this.#reading = true
    this.#call.startRead()
  }

  halfClose (): void {
    this.#halfClosed = true
    this.#call.halfClose()
  }

  cancelWithStatus (code: status, details: string): void {
    this.#cancelled = true
    this.#call.cancelWithStatus(code, details)
  }

  getPeer (): string {
    return this.#call.getPeer()
  }

  getCallNumber (): number {
    return this.#call.getCallNumber()
  }

  setCredentials (credentials: CallCredentials): void {
    this.#credentials = credentials
    this.#call.setCredentials(credentials)
  }

  getAuthContext (): ReturnType<Call['getAuthContext']> {
    return this.#call.getAuthContext()
  }

  // The attempt's listener. A retry's headers are not passed on a second time: a server going
  // away may send headers, then UNAVAILABLE with no message, and that call is still retried.
  onReceiveMetadata (metadata: Metadata): void {
    if (this.#headersPassed) return
    this.#headersPassed = true
    this.#listener!.onReceiveMetadata(metadata)
  }

  onReceiveMessage (message: unknown): void {
    if (this.#hold && this.#held === null) {
      // A unary reply (the method's definition said so): its status decides whether it stands.
      this.#held = { message }
      return
    }
    this.#responded = true
    this.#listener!.onReceiveMessage(message)
  }

  onReceiveStatus (s: StatusObject): void {
    if (s.code !== status.UNAVAILABLE) {
      this.#end(s)
      return
    }
    if (s.metadata.get(ROUTING_ERROR_KEY).length > 0) {
      // A retry found no other instance: report the failure that caused it, as HTTP does.
      this.#end(this.#lastFailure ?? s)
      return
    }
    if (this.#responded || this.#cancelled || this.#attempts >= this.#channel.config.maxRetries || this.#messages > 1 || !this.#halfClosed) {
      this.#end(s)
      return
    }
    this.#retry(s)
  }

  /** The caller gets the held reply (if any), then the status. */
  #end (s: StatusObject): void {
    const held = this.#held
    if (held !== null) {
      this.#held = null
      this.#responded = true
      this.#listener!.onReceiveMessage(held.message)
    }
    this.#listener!.onReceiveStatus(s)
  }

  /** A fresh call on the inner channel: the picker runs again and skips what was tried. */
  #retry (failure: StatusObject): void {
    this.#held = null // its attempt did not finish: the reply may not stand
    this.#attempts++
    this.#lastFailure = failure
    const tried = (this.#tried ??= [])
    const peer = this.#call.getPeer()
    if (peer !== '' && !tried.includes(peer)) tried.push(peer)
    const metadata = this.#metadata!.clone()
    metadata.remove(TRIED_KEY)
    for (const p of tried) metadata.add(TRIED_KEY, p)
    const call = this.#channel.inner.createCall(this.#method, this.#deadline, this.#host, this.#parent, this.#propagateFlags)
    if (this.#credentials !== null) call.setCredentials(this.#credentials)
    this.#call = call
    call.start(metadata, this)
    if (this.#message !== null) call.sendMessageWithContext({}, this.#message)
    if (this.#reading) call.startRead()
    call.halfClose()
  }
}
