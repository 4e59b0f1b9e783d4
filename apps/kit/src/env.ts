import { TAG_PATTERN } from '@flowtag/context/internals'
import { z } from 'zod'

/** The environment every demo service reads; a bad value stops start-up with the variable named. */
export const serviceEnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(0),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** gRPC port of services that serve gRPC (inventory-service); 0 = any free port. */
  GRPC_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  SERVICE_VERSION: z.string().regex(TAG_PATTERN, 'a lane name: 1-64 characters of [A-Za-z0-9._-]').default('v1'),
  DEPLOY_ENV: z.string().min(1).default('dev'),
  NACOS_SERVER_ADDR: z.string().min(1),
  NACOS_NAMESPACE: z.string().default(''),
  NACOS_USERNAME: z.string().min(1).optional(),
  NACOS_PASSWORD: z.string().min(1).optional(),
  /** Where the RuleSet lives in the config center. */
  RULES_DATA_ID: z.string().min(1).default('flowtag-rules.json'),
  RULES_GROUP: z.string().min(1).default('FLOWTAG'),
  /** Serve this long after deregistering, so callers drop the instance first. */
  DRAIN_MS: z.coerce.number().int().min(0).max(600_000).default(1000),
  /** `1`: the edge returns debug headers to clients (the fallback receipt, `x-flowtag-fallback`). */
  FLOWTAG_DEBUG: z.enum(['0', '1']).default('0').transform((v) => v === '1'),
  /** Share (0-1) of requests this instance answers with 500: a bad build, for canary demos and tests. */
  FAIL_RATE: z.coerce.number().min(0).max(1).default(0),
  /** Exit the process in the middle of every Nth request of the app's own routes (0: never): a crash-looping build, for chaos tests. */
  CRASH_EVERY: z.coerce.number().int().min(0).default(0),
  /** Sign lanes on every hop and honour only signed ones at services (the demo sets one); unset: services trust the network. */
  FLOWTAG_TAG_KEY: z.string().min(16, 'at least 16 characters').optional(),
  FLOWTAG_TAG_KEY_ID: z.string().regex(/^[A-Za-z0-9._-]{1,32}$/).default('demo'),
  /** Root of the disk snapshots; each app keeps its own under <root>/<service>. Unset: the preset's default. */
  FLOWTAG_CACHE_DIR: z.string().min(1).optional(),
  /** `host:port,...` of the Kafka the async hop uses (order-created events); unset: no events. */
  KAFKA_BROKERS: z.string().regex(/^[^\s,]+(,[^\s,]+)*$/, 'host:port,... without spaces').optional(),
  /** The topic order-service publishes order-created events to. */
  ORDER_EVENTS_TOPIC: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, 'a Kafka topic name').default('order-created'),
  /** The currency order-service answers its orders in (`order.currency`); the demo's shadow act runs a v3 with another. */
  ORDER_CURRENCY: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code: three capital letters').default('EUR'),
  /** The consumer group of notification-service's stable lane (lane L's: `<group>.<L>`). */
  KAFKA_GROUP: z.string().min(1).max(200).default('notification-service'),
  /** Kafka's session timeout of the consumers: how long a SIGKILLed consumer's partitions wait before another member takes them. */
  KAFKA_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6000).max(300_000).default(6000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
})

export type ServiceEnv = z.output<typeof serviceEnvSchema>

export class EnvError extends Error {
  readonly code = 'FLOWTAG_DEMO_BAD_ENV'
}

export function readEnv (env: NodeJS.ProcessEnv = process.env): ServiceEnv {
  const parsed = serviceEnvSchema.safeParse(env)
  if (parsed.success) return parsed.data
  const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
  throw new EnvError(`bad environment: ${lines.join('; ')}`)
}
