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
import { NacosRegistration, registrationOptionsSchema } from './registration.ts'

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

const pluginOptions = registrationOptionsSchema.omit({ logger: true }).extend({
  /** An existing client (the plugin leaves it open), or options to create one (closed with Fastify). */
  client: z.instanceof(NacosClient).optional(),
  nacos: z.record(z.string(), z.unknown()).optional(),
  healthPath: z.union([z.string().startsWith('/'), z.literal(false)]).default('/health'),
  readyPath: z.union([z.string().startsWith('/'), z.literal(false)]).default('/ready')
})

export type FastifyNacosOptions = Omit<z.input<typeof pluginOptions>, 'nacos'> & { nacos?: NacosClientOptions }

const fastifyNacosPlugin: FastifyPluginAsync<FastifyNacosOptions> = async function fastifyNacosPlugin (fastify, rawOptions) {
  const { register: _r, prefix: _p, logLevel: _l, ...rest } = rawOptions as FastifyNacosOptions & Record<string, unknown>
  const { client: given, nacos, healthPath, readyPath, ...registrationOptions } = parseOptions(pluginOptions, rest)
  if ((given === undefined) === (nacos === undefined)) {
    throw new NacosError('FLOWTAG_NACOS_BAD_OPTION', 'invalid option "client": give exactly one of client or nacos')
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

  if (healthPath !== false) {
    fastify.get(healthPath, { logLevel: 'warn' }, async function health () {
      return { status: 'ok' }
    })
  }
  if (readyPath !== false) {
    fastify.get(readyPath, { logLevel: 'warn' }, async function ready (_request, reply) {
      if (registration.ready) return { status: 'ready' }
      return reply.code(503).send({ status: 'not ready', registered: registration.registered, draining: registration.draining })
    })
  }

  fastify.addHook('onReady', async function nacosCheck () {
    await registration.check()
  })

  fastify.addHook('onListen', async function nacosRegister () {
    const address = fastify.server.address()
    // A pipe or socket path has no port: start() then needs the port option.
    await registration.start(typeof address === 'object' && address !== null ? address : undefined)
  })

  fastify.addHook('preClose', async function nacosDrain () {
    await registration.drain()
  })

  fastify.addHook('onClose', async function nacosClose () {
    await registration.close()
    if (given === undefined) await client.close()
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

export const fastifyNacos = fp(fastifyNacosPlugin, { fastify: '5.x', name: '@flowtag/nacos' })
export default fastifyNacos
