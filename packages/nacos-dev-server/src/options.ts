import { z } from 'zod'
import { optionErrorMessage } from '@flowtag/errors'
import { DevServerError, errorCodes } from './errors.ts'

const ms = z.number().int().positive()

/**
 * The Nacos generation the server behaves as (what a client sees of it):
 * - `'2.5'`: HTTP v1, gRPC, UDP push; no v3 API (404).
 * - `'3.1'`: v1 client API, the v3 client API, gRPC, UDP push (Nacos 3.0/3.1).
 * - `'3.3'`: as Nacos 3.2+: no `/v1` or `/v2` API (404) but the v1 login (`/nacos/v1/auth/login`,
 *   `/nacos/v1/auth/users/login`) and `GET /nacos/v1/ns/operator/metrics`, no UDP push; client API
 *   auth on by default (3.3.0).
 * In every mode `public` and blank name one default namespace, and a config push carries the
 * namespace id each connection listened with.
 */
export const COMPAT_MODES = ['2.5', '3.1', '3.3'] as const
export type CompatMode = (typeof COMPAT_MODES)[number]

/** The user `compat: '3.3'` creates when `auth` is not given (Nacos 3.3 turns client auth on). */
export const DEFAULT_33_USER = { username: 'nacos', password: 'nacos' } as const

const authSchema = z.strictObject({
  username: z.string().min(1),
  password: z.string().min(1),
  tokenTtlSeconds: z.number().int().positive().default(18000),
  /** false: the user exists and can log in, but no call is refused (Nacos with auth off). */
  enabled: z.boolean().default(true)
})

export const optionsSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).default(8848),
  host: z.string().min(1).default('127.0.0.1'),
  /** The Nacos generation to behave as (see COMPAT_MODES). '3.1' serves every API a 2.x or 3.x client may use. */
  compat: z.enum(COMPAT_MODES).default('3.1'),
  /**
   * When set, every API but login and the metrics probe needs a token, as Nacos with auth on.
   * `false` turns it off; unset: off, except with `compat: '3.3'` (user `nacos`, password `nacos`).
   */
  auth: z.union([z.literal(false), authSchema]).optional(),
  /** Ephemeral-instance health, as Nacos's defaults; tests shorten them. */
  heartbeat: z
    .strictObject({
      intervalMs: ms.default(5000),
      timeoutMs: ms.default(15000),
      deleteTimeoutMs: ms.default(30000),
      checkIntervalMs: ms.default(5000)
    })
    .prefault({}),
  /** UDP push to v1 subscribers. */
  push: z
    .strictObject({
      delayMs: z.number().int().min(0).default(500),
      ackTimeoutMs: ms.default(10000),
      subscriberTtlMs: ms.default(30000)
    })
    .prefault({}),
  /**
   * Serve Nacos's gRPC client protocol on HTTP port + 1000, as Nacos 2.x/3.x do. With `port: 0`
   * the server picks a free HTTP port whose + 1000 is free too.
   */
  grpc: z.boolean().default(true),
  /** The gRPC port when not HTTP port + 1000 (0: any free port). */
  grpcPort: z.number().int().min(0).max(65535).optional(),
  /** Shortest hold of a config long poll (Nacos: 10 s). */
  longPollMinMs: ms.default(10000),
  /** The cacheMillis answered with instance lists. */
  cacheMillis: ms.default(10000),
  maxBodyBytes: z.number().int().positive().default(10 * 1024 * 1024),
  /**
   * A form body larger than this (bytes) loses its parameters, as in Nacos: its Spring Boot
   * (Tomcat) keeps max-http-form-post-size at 2 MB, measured on 2.5.0 (2097152 bytes pass, one
   * more and `dataId` is "not present").
   */
  maxFormBytes: z.number().int().positive().default(2 * 1024 * 1024),
  /**
   * Longest config content accepted, in UTF-16 code units as Java's String.length() counts
   * (Nacos: `maxContent`, 10 MiB, PropertyUtil/ParamUtils.checkParam); longer is refused
   * `invalid content, over <n>`.
   */
  configMaxContent: z.number().int().positive().default(10 * 1024 * 1024),
  /**
   * Largest gRPC message the gRPC port accepts (bytes), as Nacos's
   * `nacos.remote.server.grpc.sdk.max-inbound-message-size` (10 MiB); larger is refused with
   * RESOURCE_EXHAUSTED. What it sends is not limited, as in Nacos.
   */
  grpcMaxMessageBytes: z.number().int().min(1024).max(2_147_483_647).default(10 * 1024 * 1024),
  /** A JSON file that keeps configs across restarts. */
  dataFile: z.string().min(1).optional(),
  /** Called with one line per notable event (listening, bad request); silent by default. */
  log: z.custom<(line: string) => void>((v) => typeof v === 'function', 'expected a function').optional()
})

export type DevServerOptions = z.input<typeof optionsSchema>
export type ResolvedOptions = Omit<z.output<typeof optionsSchema>, 'auth'> & { auth?: z.output<typeof authSchema> }

export function resolveOptions (input: unknown): ResolvedOptions {
  const parsed = optionsSchema.safeParse(input ?? {})
  if (!parsed.success) throw new DevServerError(errorCodes.BAD_OPTION, optionErrorMessage('@flowtag/nacos-dev-server', parsed.error))
  const { auth, ...rest } = parsed.data
  if (auth === false) return rest
  if (auth === undefined && rest.compat === '3.3') return { ...rest, auth: { ...DEFAULT_33_USER, tokenTtlSeconds: 18000, enabled: true } }
  return auth === undefined ? rest : { ...rest, auth }
}
