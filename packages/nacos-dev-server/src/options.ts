import { z } from 'zod'
import { optionErrorMessage } from '@flowtag/errors'
import { DevServerError, errorCodes } from './errors.ts'

const ms = z.number().int().positive()

export const optionsSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).default(8848),
  host: z.string().min(1).default('127.0.0.1'),
  /** When set, every API but login and the metrics probe needs a token, as Nacos with auth on. */
  auth: z
    .strictObject({
      username: z.string().min(1),
      password: z.string().min(1),
      tokenTtlSeconds: z.number().int().positive().default(18000),
      /** false: the user exists and can log in, but no call is refused (Nacos with auth off). */
      enabled: z.boolean().default(true)
    })
    .optional(),
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
export type ResolvedOptions = z.output<typeof optionsSchema>

export function resolveOptions (input: unknown): ResolvedOptions {
  const parsed = optionsSchema.safeParse(input ?? {})
  if (!parsed.success) throw new DevServerError(errorCodes.BAD_OPTION, optionErrorMessage('@flowtag/nacos-dev-server', parsed.error))
  return parsed.data
}
