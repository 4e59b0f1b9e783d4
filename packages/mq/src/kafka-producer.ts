// The kafkajs producer in lanes: the same Producer, whose send/sendBatch (and those of its
// transactions) add the flow's lane headers to every message produced inside a flow.
import type { Message, Producer, ProducerBatch, ProducerRecord, Transaction } from 'kafkajs'
import type { FlowContext, SigningOptions } from '@flowtag/context'
import { currentFlow } from '@flowtag/context'
import { laneStamper, suppressedInShadow, type SignLane } from './headers.ts'
import { errorCodes, MqError } from './errors.ts'
import { PKG, producerSigner } from './options.ts'

export interface LaneProducerOptions {
  /** Sign the lane written in `x-flow-tag` (`{ keys, ttlSeconds? }`); the baggage member stays plain. */
  signing?: SigningOptions
  /** @deprecated Use `signing`. Writes `x-flow-tag` as this function's answer (a signed tag). */
  signTag?: SignLane
}

function stamp (messages: Message[], flow: FlowContext | undefined, sign: SignLane | undefined): Message[] {
  if (flow === undefined) return messages
  const withLane = laneStamper(flow, sign)
  return messages.map((m) => ({ ...m, headers: withLane(m.headers) }))
}

function wrapSender<S extends Pick<Producer, 'send' | 'sendBatch'>> (sender: S, sign: SignLane | undefined): S {
  return {
    ...sender,
    send: (record: ProducerRecord) => {
      const flow = currentFlow()
      if (suppressedInShadow(flow, 'kafka', record.messages?.length ?? 0)) return Promise.resolve([])
      return sender.send({ ...record, messages: stamp(record.messages, flow, sign) })
    },
    sendBatch: (batch: ProducerBatch) => {
      const flow = currentFlow()
      if (suppressedInShadow(flow, 'kafka', batch.topicMessages?.reduce((n, tm) => n + tm.messages.length, 0) ?? 0)) return Promise.resolve([])
      const topicMessages = batch.topicMessages?.map((tm) => ({ ...tm, messages: stamp(tm.messages, flow, sign) }))
      return sender.sendBatch(topicMessages === undefined ? batch : { ...batch, topicMessages })
    }
  }
}

/**
 * The kafkajs `producer` with lanes: every message sent inside a flow (`runWithFlow`, a request
 * of the Fastify/Express plugins, a consumed message's handler) carries `x-flow-tag` (signed
 * with `signing`) and the W3C `baggage` lane member; outside a flow nothing is added. Inside a
 * shadow flow (a mirrored copy) nothing is sent: `send` resolves `[]` (counted). Every
 * other method is the producer's own; the producer itself is not modified.
 *
 * ```ts
 * const producer = laneProducer(kafka.producer())
 * await producer.connect()
 * await producer.send({ topic: 'orders', messages: [{ key: id, value }] })
 * ```
 * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` when `producer` is not a kafkajs producer, or an option is
 *   invalid or unknown (`signing` and the deprecated `signTag` are the only ones; not both).
 */
export function laneProducer (producer: Producer, options: LaneProducerOptions = {}): Producer {
  if (typeof producer !== 'object' || producer === null || typeof producer.send !== 'function' || typeof producer.sendBatch !== 'function') {
    throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid option "producer": expected a kafkajs Producer`)
  }
  const sign = producerSigner(options)
  const wrapped = wrapSender(producer, sign)
  return {
    ...wrapped,
    transaction: async (): Promise<Transaction> => wrapSender(await producer.transaction(), sign)
  }
}
