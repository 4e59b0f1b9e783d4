// @flowtag/nacos/fastify: register the service on listen, keep it alive, leave cleanly on close.
// The lifecycle itself is NacosRegistration (registration.ts); this file maps it onto hooks and routes.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { NacosClient } from './client.ts'
import type { NamingDiscovery } from './discovery.ts'
import { presetClientOptions } from './env.ts'
import { NacosError, badOption, errorCodes } from './errors.ts'
import { parseOptions, type NacosClientOptions } from './options.ts'
import { NacosRegistration, readiness, registrationOptionsSchema, type ListenAddress } from './registration.ts'

declare module 'fastify' {
  interface FastifyInstance {
    nacos: FastifyNacos
  }
}

export interface FastifyNacos {
  client: NacosClient
  discovery: NamingDiscovery
  registration: NacosRegistration
  /** Registered in Nacos and not draining. */
  readonly ready: boolean
  readonly registered: boolean
  readonly draining: boolean
  /** Deregister and report not ready, then wait drainMs. Runs on close if not called before. */
  drain(): Promise<void>
}

/**
 * What the plugin runs on Fastify's hooks and reports on `/ready`: the {@link NacosRegistration}
 * it makes, or one given as `lifecycle` by what owns the registration (@flowtag/service).
 */
export interface NacosLifecycle {
  /** Registered (or registering nothing) and not draining: `/ready` answers 200. */
  readonly ready: boolean
  readonly registered: boolean
  readonly draining: boolean
  /** `onReady`: before listening (with failFast, Nacos must answer). */
  check(): Promise<void>
  /** `onListen`: register with the address listened on (undefined for a pipe). */
  start(address: ListenAddress | undefined): Promise<void>
  /** `preClose`: deregister, report not ready, wait drainMs. */
  drain(): Promise<void>
  /** `onClose`: after in-flight requests. */
  close(): Promise<void>
}

const probePath = z.union([z.string().startsWith('/'), z.literal(false)])

const pluginOptions = registrationOptionsSchema.omit({ logger: true }).extend({
  /** An existing client (the plugin leaves it open), or options to create one (closed with Fastify). */
  client: z.instanceof(NacosClient).optional(),
  nacos: z.record(z.string(), z.unknown()).optional(),
  healthPath: probePath.default('/health'),
  readyPath: probePath.default('/ready')
})

const isLifecycle = (v: unknown): v is NacosLifecycle =>
  typeof v === 'object' && v !== null && ['check', 'start', 'drain', 'close'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function')

// A lifecycle given instead of a registration: the plugin serves the probes and runs its hooks.
const lifecycleOptions = z.strictObject({
  lifecycle: z.custom<NacosLifecycle>(isLifecycle, 'expected an object with check/start/drain/close functions and ready/registered/draining'),
  /** false: the probes only; the caller runs the lifecycle (a framework over Fastify: @flowtag/nestjs). */
  hooks: z.boolean().default(true),
  healthPath: probePath.default('/health'),
  readyPath: probePath.default('/ready')
})

/**
 * Either a registration for the plugin to make (`service`, registration options, and `client` or
 * `nacos`), or `lifecycle`: one made and owned elsewhere, which the plugin runs on Fastify's hooks
 * (`hooks: false`: not even that) without decorating `fastify.nacos`.
 */
export type FastifyNacosOptions = (Omit<z.input<typeof pluginOptions>, 'nacos'> & { nacos?: NacosClientOptions }) | z.input<typeof lifecycleOptions>

const fastifyNacosPlugin: FastifyPluginAsync<FastifyNacosOptions> = async function fastifyNacosPlugin (fastify, rawOptions) {
  const { register: _r, prefix: _p, logLevel: _l, ...rest } = rawOptions as FastifyNacosOptions & Record<string, unknown>
  if (rest.lifecycle !== undefined) {
    const { lifecycle, hooks, healthPath, readyPath } = parseOptions(lifecycleOptions, rest)
    addProbes(fastify, lifecycle, healthPath, readyPath)
    if (hooks) addLifecycleHooks(fastify, lifecycle, async () => {})
    return
  }
  const { client: given, nacos, healthPath, readyPath, ...registrationOptions } = parseOptions(pluginOptions, rest)
  if ((given === undefined) === (nacos === undefined)) {
    throw new NacosError(errorCodes.BAD_OPTION, 'invalid option "client": give exactly one of client or nacos')
  }
  // A client we create logs through Fastify's logger unless told otherwise.
  const client = given ?? createClient(nacos as NacosClientOptions, fastify, registrationOptions)
  const registration = new NacosRegistration(client, { ...registrationOptions, logger: fastify.log })

  const state: FastifyNacos = {
    client,
    discovery: client.naming,
    registration,
    get ready () {
      return registration.ready
    },
    get registered () {
      return registration.registered
    },
    get draining () {
      return registration.draining
    },
    drain: () => registration.drain()
  }
  fastify.decorate('nacos', state)

  addProbes(fastify, registration, healthPath, readyPath)
  addLifecycleHooks(fastify, registration, async () => {
    if (given === undefined) await client.close()
  })
}

/** `/health` (200 while the process serves) and `/ready` (200 or 503, see {@link readiness}); false: not served. */
function addProbes (fastify: FastifyInstance, state: Pick<NacosLifecycle, 'ready' | 'registered' | 'draining'>, healthPath: string | false, readyPath: string | false): void {
  if (healthPath !== false) {
    fastify.get(healthPath, { logLevel: 'warn' }, async function health () {
      return { status: 'ok' }
    })
  }
  if (readyPath !== false) {
    fastify.get(readyPath, { logLevel: 'warn' }, async function ready (_request, reply) {
      const r = readiness(state)
      return reply.code(r.ready ? 200 : 503).send(r.body)
    })
  }
}

/** The lifecycle on Fastify's hooks; `closed` runs after `lifecycle.close()` (the plugin's own client). */
function addLifecycleHooks (fastify: FastifyInstance, lifecycle: NacosLifecycle, closed: () => Promise<void>): void {
  fastify.addHook('onReady', async function nacosCheck () {
    await lifecycle.check()
  })

  fastify.addHook('onListen', async function nacosRegister () {
    const address = fastify.server.address()
    // A pipe or socket path has no port: start() then needs the port option.
    await lifecycle.start(typeof address === 'object' && address !== null ? address : undefined)
  })

  // Fastify marks itself closing before preClose: with return503OnClosing on (its default), new
  // requests get 503 while this drains.
  fastify.addHook('preClose', async function nacosDrain () {
    await lifecycle.drain()
  })

  fastify.addHook('onClose', async function nacosClose () {
    await lifecycle.close()
    await closed()
  })
}

function createClient (options: NacosClientOptions, fastify: FastifyInstance, app: { service: string, version?: string | undefined, env?: string | undefined }): NacosClient {
  // Credentials from NACOS_* where the options give none (a half pair names its variable);
  // connection labels from the registration.
  const full = presetClientOptions(options, app)
  try {
    return new NacosClient({ logger: fastify.log.child({ module: 'nacos' }), ...full })
  } catch (err) {
    // Name the field as the plugin user wrote it: nacos.<field>.
    if (err instanceof NacosError && err.code === errorCodes.BAD_OPTION && err.field !== undefined) {
      throw badOption(`nacos.${err.field}`, err.problem ?? err.message, ['nacos', ...(err.path ?? [err.field])])
    }
    throw err
  }
}

/**
 * Fastify plugin: register the service in Nacos on listen, serve `/health` and `/ready`, deregister
 * and drain on close. Decorates `fastify.nacos` ({@link FastifyNacos}). Options: the registration's
 * (`service`, `version`, `drainMs`, `failFast`, ...) with `client` (an open {@link NacosClient},
 * left open) or `nacos` (client options; the client is closed with Fastify), `healthPath`
 * @default '/health', `readyPath` @default '/ready' (false: not served). Or `lifecycle` (a
 * {@link NacosLifecycle} owned elsewhere, `hooks` @default true) with the two paths.
 * @throws {NacosError} `FLOWTAG_NACOS_BAD_OPTION` (at registration) naming the field
 */
export const fastifyNacos = fp(fastifyNacosPlugin, { fastify: '5.x', name: '@flowtag/nacos' })
export default fastifyNacos
