// The options every lane-aware consumer shares (Kafka and RabbitMQ alike), validated with zod once.
import { z } from 'zod'
import type { Meter } from '@opentelemetry/api'
import type { Discovery, LanesResolver } from '@flowtag/outbound/lanes'
import type { NacosClient } from '@flowtag/nacos'
import { TAG_PATTERN, type TagLogger } from '@flowtag/context'
import { optionErrorMessage } from '@flowtag/errors'
import { errorCodes, MqError } from './errors.ts'
import type { SignLane } from './headers.ts'

export const PKG = '@flowtag/mq'

/** A lane name, as a message's lane header carries it. */
export const laneSchema = z.string().regex(TAG_PATTERN, 'must be 1-64 characters of [A-Za-z0-9._-]')
const lane = laneSchema

const keySchema = z.strictObject({
  id: z.string(),
  secret: z.string()
})

export const consumerOptionsSchema = z.strictObject({
  /** The consumer service: its Nacos service name, whose instances say which lanes have live consumers. */
  service: z.string().min(1).max(512),
  /** This consumer's lane (its release); @default the stable lane. */
  lane: lane.optional(),
  /** Lane of untagged messages and the fallback lane, unless `lanes()` says otherwise. */
  stableLane: lane.default('stable'),
  /** `permissive`: lanes with no live consumer are handled by stable; `strict`: they wait. */
  mode: z.enum(['permissive', 'strict']).default('permissive'),
  /** Per-service lane configuration (a RuleSet's `serviceLanes()`), read per message: keep it cheap. */
  lanes: z.custom<LanesResolver>((v) => typeof v === 'function', { message: 'expected a function (service) => LaneConfig | undefined' }).optional(),
  /** Instance metadata key that holds an instance's lane. */
  labelKey: z.string().min(1).default('version'),
  /** Where the live consumers are read (pushed); default: `nacos.naming`. */
  discovery: z.custom<Discovery>((v) => typeof v === 'object' && v !== null && typeof (v as Discovery).instances === 'function' && typeof (v as Discovery).subscribe === 'function',
    { message: 'expected a Discovery (an object with instances() and subscribe())' }).optional(),
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
  /** Which incoming lanes to honour: `always` (default), `never`, or `{ signed: { keys } }` only. */
  trust: z.union([z.literal('always'), z.literal('never'), z.strictObject({ signed: z.strictObject({ keys: z.array(keySchema).min(1) }) })]).default('always'),
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
  /** Writes `x-flow-tag` as this function's answer (a signed tag); the other lane headers stay plain. */
  signTag: z.custom<SignLane>((v) => typeof v === 'function', { message: 'expected a function (lane) => string' }).optional()
})

export type ConsumerOptions = z.input<typeof consumerOptionsSchema>
export type ResolvedConsumerOptions = z.output<typeof consumerOptionsSchema>

/** Parse `input` with `schema`; a failure is `FLOWTAG_MQ_BAD_OPTION` naming the first bad field. */
export function parseWith<S extends z.ZodType> (schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input)
  if (!parsed.success) throw new MqError(errorCodes.BAD_OPTION, optionErrorMessage(PKG, parsed.error))
  return parsed.data
}
