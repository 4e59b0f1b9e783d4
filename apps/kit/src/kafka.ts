// The async hop's Kafka wiring shared by order-service (producer) and notification-service
// (consumer): the kafkajs client from the environment, and the same tag signing as the HTTP and
// gRPC hops, so a consumer honours only lanes order-service signed.
import type { SigningOptions } from '@flowtag/context'
import { Kafka, logLevel } from 'kafkajs'
import type { ServiceEnv } from './env.ts'

/** What an order-created event carries (JSON in the message's value; the key is the user). */
export interface OrderCreated {
  type: 'order-created'
  /** Unique per event: the demo and its tests count produced against handled by it. */
  id: string
  orderId: string
  user: string
  at: number
}

/** A signed lane in a message stays valid this long: long enough to wait out any handover or broker restart. */
const MESSAGE_TAG_TTL_S = 3600

/** The kafkajs client of KAFKA_BROKERS (undefined when unset: the async hop is off). */
export function kafkaOf (env: ServiceEnv, clientId: string): Kafka | undefined {
  if (env.KAFKA_BROKERS === undefined) return undefined
  return new Kafka({
    clientId,
    brokers: env.KAFKA_BROKERS.split(','),
    // kafkajs logs its own retries at error level; the app logs what it cannot recover from.
    logLevel: logLevel.NOTHING,
    // A broker restart takes 5-15 s: keep retrying through it instead of giving up.
    retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 }
  })
}

/**
 * The producer's `signing` (tags living an hour: a message may wait in its topic) and the
 * consumer's `trust` from FLOWTAG_TAG_KEY: signed lanes only, as on the HTTP hops; without a
 * key, lanes are plain and trusted.
 */
export function messageSigning (env: ServiceEnv): { signing?: SigningOptions; trust: 'always' | { signed: { keys: Array<{ id: string; secret: string }> } } } {
  if (env.FLOWTAG_TAG_KEY === undefined) return { trust: 'always' }
  const key = { id: env.FLOWTAG_TAG_KEY_ID, secret: env.FLOWTAG_TAG_KEY }
  return { signing: { keys: [key], ttlSeconds: MESSAGE_TAG_TTL_S }, trust: { signed: { keys: [key] } } }
}
