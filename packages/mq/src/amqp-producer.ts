// The amqplib channel in lanes: the same Channel (or ConfirmChannel), whose publish and
// sendToQueue add the flow's lane headers to every message published inside a flow, plus the
// plain `flowtag-lane` header a lane exchange routes on (a headers exchange ignores `x-` names).
import type { Channel, Options } from 'amqplib'
import { currentFlow, type SigningOptions } from '@flowtag/context'
import { suppressedInShadow, withLaneHeaders, type SignLane } from './headers.ts'
import { errorCodes, MqError } from './errors.ts'
import { PKG, producerSigner } from './options.ts'

/** The header the lane exchange routes on: the flow's lane, plain (never signed). */
export const ROUTING_HEADER = 'flowtag-lane'

export interface LaneChannelOptions {
  /** Sign the lane written in `x-flow-tag` (`{ keys, ttlSeconds? }`); baggage and `flowtag-lane` stay plain. */
  signing?: SigningOptions
  /** @deprecated Use `signing`. Writes `x-flow-tag` as this function's answer (a signed tag). */
  signTag?: SignLane
}

function stamp (options: Options.Publish | undefined, sign: SignLane | undefined): Options.Publish | undefined {
  const flow = currentFlow()
  if (flow === undefined) return options
  const headers = withLaneHeaders(options?.headers as Record<string, unknown> | undefined, flow, sign)
  if (headers === options?.headers) return options
  const lane = flow.tag
  return { ...options, headers: lane === undefined ? headers : { ...headers, [ROUTING_HEADER]: lane } }
}

/** In a shadow flow: not published (counted); a ConfirmChannel's callback is told it was confirmed. */
function shadowed (confirm: unknown): boolean {
  if (!suppressedInShadow(currentFlow(), 'rabbitmq', 1)) return false
  if (typeof confirm === 'function') process.nextTick(confirm, null)
  return true
}

/**
 * The amqplib `channel` with lanes: every message published inside a flow carries `x-flow-tag`
 * (signed with `signing`), the W3C `baggage` lane member and `flowtag-lane`; outside a flow
 * nothing is added; inside a shadow flow (a mirrored copy) nothing is published: `publish` returns
 * `true` and a ConfirmChannel's callback is called without an error (counted). Every other method is the channel's own (a ConfirmChannel keeps its
 * callbacks); the channel itself is not modified.
 *
 * @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` when `channel` is not an amqplib channel, or an option is
 *   invalid or unknown (`signing` and the deprecated `signTag` are the only ones; not both).
 */
export function laneChannel<C extends Pick<Channel, 'publish' | 'sendToQueue'>> (channel: C, options: LaneChannelOptions = {}): C {
  if (typeof channel !== 'object' || channel === null || typeof channel.publish !== 'function' || typeof channel.sendToQueue !== 'function') {
    throw new MqError(errorCodes.BAD_OPTION, `${PKG}: invalid option "channel": expected an amqplib Channel`)
  }
  const sign = producerSigner(options)
  return new Proxy(channel, {
    get (target, prop, receiver) {
      if (prop === 'publish') {
        return (exchange: string, routingKey: string, content: Buffer, opts?: Options.Publish, ...rest: unknown[]) =>
          shadowed(rest[0]) || (target.publish as (...a: unknown[]) => boolean).call(target, exchange, routingKey, content, stamp(opts, sign), ...rest)
      }
      if (prop === 'sendToQueue') {
        return (queue: string, content: Buffer, opts?: Options.Publish, ...rest: unknown[]) =>
          shadowed(rest[0]) || (target.sendToQueue as (...a: unknown[]) => boolean).call(target, queue, content, stamp(opts, sign), ...rest)
      }
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    }
  })
}
