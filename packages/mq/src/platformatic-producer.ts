// The @platformatic/kafka producer in lanes: the same Producer, whose send() adds the flow's
// lane headers to every message produced inside a flow.
import type { MessageToProduce, Producer } from '@platformatic/kafka'
import { currentFlow, type FlowContext, type SigningOptions } from '@flowtag/context'
import { FLOW_TAG_HEADER } from '@flowtag/context'
import { laneHeaders, suppressedInShadow, type MessageHeaders, type SignLane } from './headers.ts'
import { errorCodes, MqError } from './errors.ts'
import { PKG, producerSigner } from './options.ts'

export interface PlatformaticLaneProducerOptions {
  /** Sign the lane written in `x-flow-tag` (`{ keys, ttlSeconds? }`); the baggage member stays plain. */
  signing?: SigningOptions
  /** @deprecated Use `signing`. Writes `x-flow-tag` as this function's answer (a signed tag). */
  signTag?: SignLane
}

type AnyMessage = MessageToProduce<unknown, unknown, unknown, unknown>

/** The message's headers as names (strings) to values, for reading its own `baggage`. */
function asRecord (headers: AnyMessage['headers']): MessageHeaders | undefined {
  if (headers === undefined) return undefined
  if (!(headers instanceof Map)) return headers as MessageHeaders
  const out: MessageHeaders = {}
  for (const [k, v] of headers) out[String(k)] = v
  return out
}

const isLaneHeader = (name: unknown): boolean => {
  const n = String(name).toLowerCase()
  return n === FLOW_TAG_HEADER || n === 'baggage'
}

/** The lane headers as the client's default serializers expect them: Buffers. */
const asBuffers = (lane: Record<string, string>): Array<[Buffer, Buffer]> => Object.entries(lane).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])

/**
 * Sets the lane headers over each message's own (other headers kept as they were) for the
 * messages of one send, all in `flow`: built (and signed) once, per message only for a message
 * that brings its own `baggage` (merged).
 */
function stamper (flow: FlowContext, sign: SignLane | undefined): (m: AnyMessage) => AnyMessage {
  let plain: Array<[Buffer, Buffer]> | undefined
  return (m) => {
    const own = asRecord(m.headers)
    const lane = own?.baggage !== undefined ? asBuffers(laneHeaders(own, flow, sign)) : (plain ??= asBuffers(laneHeaders(undefined, flow, sign)))
    if (lane.length === 0) return m
    const out = new Map<unknown, unknown>()
    if (m.headers instanceof Map) {
      for (const [k, v] of m.headers) if (!isLaneHeader(k)) out.set(k, v)
    } else if (m.headers !== undefined) {
      for (const [k, v] of Object.entries(m.headers)) if (!isLaneHeader(k)) out.set(Buffer.from(k), v)
    }
    for (const [k, v] of lane) out.set(k, v)
    return { ...m, headers: out }
  }
}

/**
 * The @platformatic/kafka `producer` with lanes: every message sent inside a flow carries
 * `x-flow-tag` (signed with `signing`) and the W3C `baggage` lane member, as Buffers (the
 * client's default header serializers pass them through; `stringSerializers` take them too);
 * outside a flow nothing is added; inside a shadow flow (a mirrored copy) nothing is sent: `send`
 * resolves `{}` (counted). Every other method and property is the producer's own.
 *
 * ```ts
 * const producer = laneProducer(new Producer({ clientId: 'orders', bootstrapBrokers }))
 * await producer.send({ messages: [{ topic: 'orders', key, value }] })
 * ```
 * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` when `producer` is not a @platformatic/kafka Producer, or an option is invalid or unknown.
 */
export function laneProducer<P extends Pick<Producer, 'send'>> (producer: P, options: PlatformaticLaneProducerOptions = {}): P {
  if (typeof producer !== 'object' || producer === null || typeof producer.send !== 'function') {
    throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid option "producer": expected a @platformatic/kafka Producer`)
  }
  const sign = producerSigner(options)
  return new Proxy(producer, {
    get (target, prop, receiver) {
      if (prop === 'send') {
        return (opts: { messages: AnyMessage[] }, ...rest: unknown[]) => {
          const flow = currentFlow()
          if (suppressedInShadow(flow, 'kafka', Array.isArray(opts?.messages) ? opts.messages.length : 0)) {
            const done = rest[0]
            if (typeof done === 'function') { process.nextTick(done, null, {}); return undefined }
            return Promise.resolve({})
          }
          const stamped = flow === undefined || !Array.isArray(opts?.messages) ? opts : { ...opts, messages: opts.messages.map(stamper(flow, sign)) }
          return (target.send as (...a: unknown[]) => unknown).call(target, stamped, ...rest)
        }
      }
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    }
  })
}
