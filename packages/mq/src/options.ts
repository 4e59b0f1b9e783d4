// The options every lane-aware consumer shares (Kafka and RabbitMQ alike), validated with zod once.
// The lane-routing fields are @flowtag/outbound's shared `laneRoutingSchema`; the rest is the consumer's own.
import { z } from 'zod'
import type { Meter } from '@opentelemetry/api'
import { discoverySchema, laneRoutingSchema, warnDeprecatedOption } from '@flowtag/outbound/lanes'
import type { NacosClient } from '@flowtag/nacos'
import { laneSigner, signingKeySchema, signingOptionsSchema, type TagLogger } from '@flowtag/context'
import { TAG_PATTERN } from '@flowtag/context/internals'
import { badOptionMessage, optionErrorMessage } from '@flowtag/errors'
import { errorCodes, MqError } from './errors.ts'
import type { SignLane } from './headers.ts'
import type { ConsumerMode } from './ownership.ts'
import type { MessageTrust } from './flow-reader.ts'

export const PKG = '@flowtag/mq'

/** A lane name, as a message's lane header carries it. */
export const laneSchema = z.string().regex(TAG_PATTERN, 'must be 1-64 characters of [A-Za-z0-9._-]')
const lane = laneSchema

/**
 * The consumer's options: the shared lane routing (`discovery`, `labelKey`, `stableLane`,
 * `strict`, `lanes`, `signing`: `laneRoutingSchema` of `@flowtag/outbound/lanes`, so
 * `{ ...app.flowtag.routing, service }` fits) and the consumer's own.
 */
export const consumerOptionsSchema = laneRoutingSchema.extend({
  /** The consumer service: its Nacos service name, whose instances say which lanes have live consumers. */
  service: z.string().min(1).max(512),
  /** This consumer's lane (its release); @default the stable lane. */
  lane: lane.optional(),
  /** Lane of untagged messages and the fallback lane, unless `lanes()` says otherwise. */
  stableLane: lane.default('stable'),
  /**
   * `permissive`: lanes with no live consumer are handled by stable; `strict`: they wait.
   * @default `strict` when the routing's `strict` is true, else `permissive`
   */
  mode: z.enum(['permissive', 'strict']).optional(),
  /** Where the live consumers are read (pushed); default: `nacos.naming`. */
  discovery: discoverySchema.optional(),
  /** Registers this consumer as an instance of `service` (lane in metadata); none: the app registers it. */
  nacos: z.custom<NacosClient>((v) => typeof v === 'object' && v !== null && typeof (v as NacosClient).naming === 'object', { message: 'expected a NacosClient' }).optional(),
  /** The registered instance: `port` (the consumer's health or /metrics port) and the other NacosRegistration options. */
  registration: z.strictObject({
    port: z.number().int().min(1).max(65535),
    ip: z.string().min(1).optional(),
    weight: z.number().positive().max(10_000).default(1),
    clusterName: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    metadata: z.record(z.string(), z.string()).default({}),
    env: z.string().min(1).optional(),
    drainMs: z.number().int().min(0).max(600_000).default(0)
  }).optional(),
  /**
   * Which incoming lanes to honour: `always`, `never`, or `{ signed: { keys } }` only (a
   * `signing` object fits as `signed`). @default `{ signed: signing }` with `signing`, else `always`
   */
  trust: z.union([z.literal('always'), z.literal('never'), z.strictObject({
    signed: z.strictObject({ keys: z.array(signingKeySchema).min(1), ttlSeconds: z.int().min(10).max(86_400).optional() })
  })]).optional(),
  /** Put the lane in the OTel context of the handler (as the HTTP plugins do). */
  otel: z.boolean().default(true),
  /** Meter of the consumer's instruments; default: the global MeterProvider's. */
  meter: z.custom<Meter>((v) => typeof v === 'object' && v !== null && typeof (v as Meter).createCounter === 'function', { message: 'expected an OpenTelemetry Meter' }).optional(),
  /** `{ debug, warn }`: refused tags (never their values), handover steps. */
  logger: z.custom<TagLogger>((v) => typeof v === 'object' && v !== null && typeof (v as TagLogger).debug === 'function' && typeof (v as TagLogger).warn === 'function',
    { message: 'expected a logger with debug() and warn()' }).optional()
})

/** The options of `laneProducer` and `laneChannel`. */
export const producerOptionsSchema = z.strictObject({
  /** Sign the lane written in `x-flow-tag` (`{ keys, ttlSeconds? }`, the one signing shape); the other lane headers stay plain. */
  signing: signingOptionsSchema.optional(),
  /** @deprecated Use `signing`. Writes `x-flow-tag` as this function's answer (a signed tag). Not with `signing`. */
  signTag: z.custom<SignLane>((v) => typeof v === 'function', { message: 'expected a function (lane) => string' }).optional()
})

/** The producer's signer: from `signing`, or the deprecated `signTag`. @throws {MqError} `FLOWTAG_MQ_BAD_OPTION` */
export function producerSigner (options: unknown): SignLane | undefined {
  const o = parseWith(producerOptionsSchema, options)
  if (o.signing !== undefined && o.signTag !== undefined) throw new MqError(errorCodes.BAD_OPTION, badOptionMessage(PKG, 'signTag', 'give signing or signTag (deprecated), not both'))
  if (o.signTag !== undefined) {
    warnDeprecatedOption(PKG, 'signTag', 'signing: { keys, ttlSeconds }')
    return o.signTag
  }
  return o.signing === undefined ? undefined : laneSigner(o.signing)
}

export type ConsumerOptions = z.input<typeof consumerOptionsSchema>
export type ResolvedConsumerOptions = z.output<typeof consumerOptionsSchema>

/** The mode in force: `mode`, else `strict` from the shared routing. */
export function consumerMode (o: Pick<ResolvedConsumerOptions, 'mode' | 'strict'>): ConsumerMode {
  return o.mode ?? (o.strict ? 'strict' : 'permissive')
}

/** The trust in force: `trust`, else only tags signed with `signing`'s keys, else `always`. */
export function consumerTrust (o: Pick<ResolvedConsumerOptions, 'trust' | 'signing'>): MessageTrust {
  return o.trust ?? (o.signing === undefined ? 'always' : { signed: { keys: o.signing.keys } })
}

/** Parse `input` with `schema`; a failure is `FLOWTAG_MQ_BAD_OPTION` naming the first bad field. */
export function parseWith<S extends z.ZodType> (schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input)
  if (!parsed.success) throw new MqError(errorCodes.BAD_OPTION, optionErrorMessage(PKG, parsed.error))
  return parsed.data
}
