// The client interceptor: writes the current flow into every call's metadata (`x-flow-tag`,
// `baggage`, the tag signed when `sign` is set) and retries a call that failed UNAVAILABLE
// before any response message, once, on another instance of its lane (the picker skips the addresses
// listed in `x-flowtag-tried`). Only calls with a single request message are retried: their
// request is known when they fail.
import { InterceptingCall, Metadata, status, type Interceptor, type InterceptingListener, type StatusObject } from '@grpc/grpc-js'
import { BAGGAGE_KEY, currentFlow, FLOW_TAG_HEADER, parseTag, writeFlowHeaders, signTag, type Carrier, type FlowContext } from '@flowtag/context'
import { ROUTING_ERROR_KEY } from './errors.ts'
import { TRIED_KEY } from './keys.ts'
import type { ResolvedGrpcOptions } from './options.ts'

/** Write the flow into `md`. A tag already in the metadata is replaced: the flow decides the lane. */
export function writeFlow (md: Metadata, flow: FlowContext | undefined, signed?: (lane: string) => string): void {
  if (flow === undefined) return
  const tag = parseTag(flow.tag)
  const existing = md.get('baggage')
  if (tag !== undefined && existing.length === 0 && isEmpty(flow.baggage)) {
    md.set(FLOW_TAG_HEADER, signed === undefined ? tag : signed(tag))
    md.set('baggage', `${BAGGAGE_KEY}=${tag}`)
    return
  }
  const carrier: Carrier = {}
  if (existing.length > 0) carrier.baggage = existing.map(String).join(',')
  writeFlowHeaders(carrier, flow)
  md.remove(FLOW_TAG_HEADER)
  if (tag !== undefined) md.set(FLOW_TAG_HEADER, signed === undefined ? tag : signed(tag))
  if (typeof carrier.baggage === 'string') md.set('baggage', carrier.baggage)
  else md.remove('baggage')
}

function isEmpty (obj: object): boolean {
  for (const _ in obj) return false
  return true
}

/** Signed tags per lane, reused until half their lifetime is gone (signing is an HMAC). */
function signer (o: ResolvedGrpcOptions): ((lane: string) => string) | undefined {
  const sign = o.sign
  if (sign === undefined) return undefined
  const cache = new Map<string, { token: string; renewAt: number }>()
  return (lane) => {
    const now = Date.now()
    const hit = cache.get(lane)
    if (hit !== undefined && hit.renewAt > now) return hit.token
    const token = signTag(lane, sign.ttlSeconds, sign.key, now)
    if (cache.size >= 256) cache.clear()
    cache.set(lane, { token, renewAt: now + (sign.ttlSeconds * 1000) / 2 })
    return token
  }
}

export function flowInterceptor (o: ResolvedGrpcOptions): Interceptor {
  const signed = signer(o)
  const maxRetries = o.maxRetries
  return function flowtagInterceptor (options, nextCall) {
    // Captured now: the caller's async context is the call's flow.
    const flow = currentFlow()
    const retryable = maxRetries > 0 && options.method_definition?.requestStream !== true
    if (!retryable) {
      return new InterceptingCall(nextCall(options), {
        start (md, listener, next) {
          writeFlow(md, flow, signed)
          next(md, listener)
        }
      })
    }
    let metadata: Metadata | null = null
    let message: unknown
    let hasMessage = false
    let responded = false
    let headersPassed = false
    let attempts = 0
    const tried: string[] = []
    const attempt = (md: Metadata, listener: InterceptingListener, lastStatus: StatusObject): void => {
      // A fresh call to the next layer: the picker runs again and skips what was tried.
      const retry = nextCall(options)
      retry.start(md, {
        onReceiveMetadata: (m) => {
          if (!headersPassed) listener.onReceiveMetadata(m)
        },
        onReceiveMessage: (m) => listener.onReceiveMessage(m),
        onReceiveStatus: (s) => {
          // The retry found no other instance: report the original failure, as HTTP does.
          listener.onReceiveStatus(s.code === status.UNAVAILABLE && s.metadata.get(ROUTING_ERROR_KEY).length > 0 ? lastStatus : s)
        }
      })
      if (hasMessage) retry.sendMessageWithContext({}, message)
      retry.halfClose()
    }
    const call: InterceptingCall = new InterceptingCall(nextCall(options), {
      start (md, listener, next) {
        writeFlow(md, flow, signed)
        metadata = md
        // A server that is going away may send headers, then UNAVAILABLE with no message: that
        // call is still retried (the retry's own headers are then not passed on a second time).
        next(md, {
          onReceiveMetadata (m, nextMd) {
            headersPassed = true
            nextMd(m)
          },
          onReceiveMessage (m, nextMsg) {
            // grpc-js passes a unary call without an answer a null message before its status.
            if (m !== null) responded = true
            nextMsg(m)
          },
          onReceiveStatus (s, nextStatus) {
            const routingError = s.metadata.get(ROUTING_ERROR_KEY).length > 0
            if (s.code !== status.UNAVAILABLE || responded || routingError || attempts >= maxRetries || metadata === null) {
              nextStatus(s)
              return
            }
            attempts++
            const peer = call.getPeer()
            if (peer !== '' && !tried.includes(peer)) tried.push(peer)
            const md2 = metadata.clone()
            md2.remove(TRIED_KEY)
            for (const p of tried) md2.add(TRIED_KEY, p)
            attempt(md2, listener as InterceptingListener, s)
          }
        })
      },
      sendMessage (m, next) {
        message = m
        hasMessage = true
        next(m)
      }
    })
    return call
  }
}
