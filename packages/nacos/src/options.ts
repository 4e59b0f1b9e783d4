// Client options: the zod schema is the source of truth for types and defaults.
import { describeBadOption } from '@flowtag/errors'
import { z } from 'zod'
import { badArgument, badOption } from './errors.ts'
import { DEFAULT_MAX_MESSAGE_BYTES } from './grpc-connection.ts'
import { silentLogger, type Logger } from './logger.ts'

const DEFAULT_PORT = 8848
const addrPattern = /^(?:(https?):\/\/)?(\[[0-9a-fA-F:.]+\]|[^\s/:@[\]]+)(?::(\d{1,5}))?\/?$/
const namePattern = /^[a-zA-Z0-9\-_:.]+$/

export interface ServerAddress {
  /** `http://host:port`, what undici dials. */
  origin: string
  host: string
  port: number
}

/** `host[:port]` with an optional http(s):// scheme; undefined when malformed. */
export function parseAddress (item: string, defaultPort = DEFAULT_PORT): ServerAddress | undefined {
  const m = addrPattern.exec(item.trim())
  const port = m?.[3] === undefined ? defaultPort : Number(m[3])
  if (m === null || port < 1 || port > 65535) return undefined
  const host = m[2] as string
  return { origin: `${m[1] ?? 'http'}://${host}:${port}`, host: host.replace(/^\[|\]$/g, ''), port }
}

const serverAddr = z
  .union([z.string(), z.array(z.string()).min(1, 'at least one server address')], { error: 'expected "host:port", a comma-separated list of them, or an array of them' })
  .transform((value, ctx) => {
    const list = (Array.isArray(value) ? value : value.split(',')).map((s) => s.trim()).filter((s) => s !== '')
    if (list.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'at least one server address' })
      return z.NEVER
    }
    const out: ServerAddress[] = []
    for (const item of list) {
      const addr = parseAddress(item)
      if (addr === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${item}" is not host:port (optionally with http://)` })
        return z.NEVER
      }
      out.push(addr)
    }
    return out
  })

/** An address server (`GET /nacos/serverlist` answers one `ip:port` a line); port 8080 by default. */
const endpoint = z.string().transform((value, ctx) => {
  const addr = parseAddress(value, 8080)
  if (addr === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not host:port (optionally with http://)` })
    return z.NEVER
  }
  return addr
})

const isLogger = (v: unknown): v is Logger =>
  typeof v === 'object' && v !== null && ['debug', 'info', 'warn', 'error'].every((k) => typeof (v as Record<string, unknown>)[k] === 'function')

const ms = (def: number) => z.number().int().positive().max(3_600_000).default(def)

export const clientOptionsSchema = z
  .strictObject({
    serverAddr: serverAddr.optional(),
    endpoint: endpoint.optional(),
    /** How often the server list is fetched again from the endpoint. */
    endpointRefreshMs: z.number().int().min(1000).default(30_000),
    namespace: z.string().regex(/^[\w-]*$/, 'letters, digits, _ and - only').max(64).default(''),
    group: z.string().regex(namePattern, 'letters, digits, -_:. only').max(128).default('DEFAULT_GROUP'),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    accessKey: z.string().min(1).optional(),
    secretKey: z.string().min(1).optional(),
    timeoutMs: ms(5000),
    cacheDir: z.string().min(1).optional(),
    loadCacheAtStart: z.boolean().default(false),
    logger: z.custom<Logger>(isLogger, 'expected an object with debug/info/warn/error functions').default(silentLogger),
    /**
     * Server API: `auto` prefers Nacos's gRPC protocol (HTTP port + 1000; pushes, connection-scoped
     * instances) when the server offers it and falls back to HTTP (the v3 client API, then v1);
     * `http` probes HTTP v1 then v3; `grpc`, `http-v1` and `http-v3` force one.
     */
    transport: z.enum(['auto', 'grpc', 'http', 'http-v1', 'http-v3']).default('auto'),
    /**
     * The application's name, sent as the `AppName` label of every gRPC connection (as Nacos's
     * Java client does); shown in Nacos's connection lists. @default 'unknown'
     */
    appName: z.string().regex(namePattern, 'letters, digits, -_:. only').max(128).optional(),
    /**
     * Application labels of every gRPC connection, sent as `app_<key>` (the Java client's form) so
     * a Nacos 3.2+ server can match config gray releases on them (e.g. `version`, `env`,
     * `nacos.config.gray.label`). Keys and values: letters, digits, `-_.`, up to 128 characters.
     */
    labels: z.record(z.string().regex(/^[\w.-]{1,128}$/, 'letters, digits, -_. only, up to 128'), z.string().regex(/^[\w.-]{1,128}$/, 'letters, digits, -_. only, up to 128')).default({}),
    /** Re-query every subscribed service at this pace (also refreshes the UDP subscription). */
    namingPollIntervalMs: ms(10_000),
    /** Ask v1 servers for UDP push of service changes. */
    udpPush: z.boolean().default(true),
    /** Address the UDP socket binds to; default 127.0.0.1 when every server is loopback, else 0.0.0.0. */
    udpHost: z.string().min(1).optional(),
    /** Address the server pushes to; default: loopback for loopback servers, else the first external IPv4. */
    clientIp: z.string().min(1).optional(),
    /** How long a v1 config long poll may be held by the server. */
    configLongPollTimeoutMs: z.number().int().min(10_000).max(120_000).default(30_000),
    /** md5 polling pace where the server has no long poll (HTTP v3). */
    configPollIntervalMs: ms(1000),
    /** Default beat pace until a server states its own. */
    beatIntervalMs: ms(5000),
    /**
     * Hold a watched service's last non-empty list against an empty answer until the server is
     * known to have listed none for `namingRecoveryHoldMs` without a restart or a failure (a server
     * restarted empty lists the instances again within it), then apply it (the last instances
     * left); at once when this client deregistered them itself. The rule: empty-list.ts. Nacos's
     * Java and Go clients call it push empty protection (and there hold every empty list).
     */
    namingProtectEmpty: z.boolean().default(true),
    /**
     * After a server answers again following an outage (or a gRPC reconnect), instances missing
     * from its lists are kept this long; also how long an empty list must be known true before it
     * applies (0: neither).
     */
    namingRecoveryHoldMs: z.number().int().min(0).max(600_000).default(5000),
    /** While no server answers, probe at this pace; the first answer re-registers, re-polls and resets back-offs. */
    recoveryProbeMs: ms(500),
    /**
     * Largest gRPC message this client sends or receives (bytes): Nacos's own limit, 10 MiB, by
     * default (grpc-js alone would take 4 MiB). A larger answer or request fails that call with
     * FLOWTAG_NACOS_TOO_LARGE; the server is not taken for down.
     */
    grpcMaxMessageBytes: z.number().int().min(65_536).max(2_147_483_647).default(DEFAULT_MAX_MESSAGE_BYTES)
  })
  .superRefine((o, ctx) => {
    if ((o.serverAddr === undefined) === (o.endpoint === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['serverAddr'], message: 'give exactly one of serverAddr or endpoint' })
    }
    if ((o.username === undefined) !== (o.password === undefined)) {
      ctx.addIssue({ code: 'custom', path: [o.username === undefined ? 'username' : 'password'], message: 'username and password go together' })
    }
    if ((o.accessKey === undefined) !== (o.secretKey === undefined)) {
      ctx.addIssue({ code: 'custom', path: [o.accessKey === undefined ? 'accessKey' : 'secretKey'], message: 'accessKey and secretKey go together' })
    }
  })

export type NacosClientOptions = z.input<typeof clientOptionsSchema>
export type ResolvedOptions = z.output<typeof clientOptionsSchema>

/** Validate options; throws FLOWTAG_NACOS_BAD_OPTION naming the first bad field. */
export function parseOptions<S extends z.ZodType> (schema: S, input: unknown, prefix?: string): z.output<S> {
  const result = schema.safeParse(input ?? {})
  if (result.success) return result.data
  const bad = describeBadOption('@flowtag/nacos', result.error, prefix === undefined ? { schema } : { schema, prefix })
  throw badOption(bad.field, bad.problem, bad.path)
}

/** The same for call arguments: FLOWTAG_NACOS_BAD_ARGUMENT. */
export function parseArgument<S extends z.ZodType> (schema: S, input: unknown, name: string): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const bad = describeBadOption('@flowtag/nacos', result.error, { prefix: name })
  throw badArgument(bad.field, bad.problem)
}

export function resolveOptions (input: NacosClientOptions): ResolvedOptions {
  return parseOptions(clientOptionsSchema, input)
}
