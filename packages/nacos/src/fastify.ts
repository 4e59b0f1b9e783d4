// @flowtag/nacos/fastify: register the service on listen, keep it alive, leave cleanly on close.
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { NacosClient } from './client.ts'
import type { Discovery } from './discovery.ts'
import { NacosError } from './errors.ts'
import type { InstanceInput } from './naming-client.ts'
import { externalIPv4 } from './net-util.ts'
import { parseOptions, type NacosClientOptions } from './options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    nacos: FastifyNacos
  }
}

export interface FastifyNacos {
  client: NacosClient
  discovery: Discovery
  /** Registered in Nacos and not draining. */
  readonly ready: boolean
  readonly registered: boolean
  readonly draining: boolean
  /** Deregister and report not ready, then wait drainMs. Runs on close if not called before. */
  drain(): Promise<void>
}

const pluginOptions = z.strictObject({
  /** An existing client (the plugin leaves it open), or options to create one (closed with Fastify). */
  client: z.instanceof(NacosClient).optional(),
  nacos: z.record(z.string(), z.unknown()).optional(),
  service: z.string().min(1).max(512),
  group: z.string().optional(),
  /** Advertised address; default: the address listened on (an external IPv4 for 0.0.0.0/::). */
  ip: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  weight: z.number().min(0).max(10_000).default(1),
  clusterName: z.string().optional(),
  metadata: z.record(z.string(), z.string()).default({}),
  /** Shorthands for metadata.version / metadata.env. */
  version: z.string().min(1).optional(),
  env: z.string().min(1).optional(),
  healthPath: z.union([z.string().startsWith('/'), z.literal(false)]).default('/health'),
  readyPath: z.union([z.string().startsWith('/'), z.literal(false)]).default('/ready'),
  /** How long to keep serving after deregistering, so callers drop this instance. */
  drainMs: z.number().int().min(0).max(600_000).default(0),
  /** Refuse to start when Nacos is unreachable, instead of registering in the background. */
  failFast: z.boolean().default(false),
  /** First retry delay of background registration (doubles up to 30 s). */
  retryMs: z.number().int().positive().default(1000)
})

export type FastifyNacosOptions = Omit<z.input<typeof pluginOptions>, 'nacos'> & { nacos?: NacosClientOptions }

const fastifyNacosPlugin: FastifyPluginAsync<FastifyNacosOptions> = async function fastifyNacosPlugin(fastify, rawOptions) {
  const { register: _r, prefix: _p, logLevel: _l, ...rest } = rawOptions as FastifyNacosOptions & Record<string, unknown>
  const opts = parseOptions(pluginOptions, rest)
  if ((opts.client === undefined) === (opts.nacos === undefined)) {
    throw new NacosError('FLOWTAG_NACOS_BAD_OPTION', 'invalid option "client": give exactly one of client or nacos')
  }
  const ownClient = opts.client === undefined
  // A client we create logs through Fastify's logger unless told otherwise.
  const client = opts.client ?? createClient(opts.nacos as NacosClientOptions, fastify)
  const metadata = { ...opts.metadata }
  if (opts.version !== undefined) metadata.version = opts.version
  if (opts.env !== undefined) metadata.env = opts.env

  const stopping = new AbortController()
  let instance: InstanceInput | undefined
  let registered = false
  let draining = false
  let drained: Promise<void> | undefined
  let registering: Promise<void> | undefined

  const state: FastifyNacos = {
    client,
    discovery: client.naming,
    get ready() {
      return registered && !draining
    },
    get registered() {
      return registered
    },
    get draining() {
      return draining
    },
    drain() {
      drained ??= drain()
      return drained
    }
  }
  fastify.decorate('nacos', state)

  if (opts.healthPath !== false) {
    fastify.get(opts.healthPath, { logLevel: 'warn' }, async function health() {
      return { status: 'ok' }
    })
  }
  if (opts.readyPath !== false) {
    fastify.get(opts.readyPath, { logLevel: 'warn' }, async function ready(_request, reply) {
      if (state.ready) return { status: 'ready' }
      return reply.code(503).send({ status: 'not ready', registered, draining })
    })
  }

  fastify.addHook('onReady', async function nacosCheck() {
    if (opts.failFast) await client.ping()
  })

  fastify.addHook('onListen', async function nacosRegister() {
    instance = {
      ...advertised(fastify, opts.ip, opts.port),
      weight: opts.weight,
      metadata,
      ...(opts.clusterName === undefined ? {} : { clusterName: opts.clusterName }),
      ...(opts.group === undefined ? {} : { group: opts.group })
    }
    registering = keepRegistering(instance)
    if (opts.failFast) await registering
  })

  fastify.addHook('preClose', async function nacosDrain() {
    await state.drain()
  })

  fastify.addHook('onClose', async function nacosClose() {
    stopping.abort()
    await registering
    if (ownClient) await client.close()
  })

  /** Try until registered; in the background unless failFast. */
  async function keepRegistering(inst: InstanceInput): Promise<void> {
    let delay = opts.retryMs
    while (!stopping.signal.aborted && !draining) {
      try {
        await client.naming.register(opts.service, inst)
        if (draining) break
        registered = true
        fastify.log.info({ service: opts.service, ip: inst.ip, port: inst.port }, 'registered in nacos')
        return
      } catch (err) {
        if (stopping.signal.aborted || draining) return
        fastify.log.warn({ err, service: opts.service, retryInMs: delay }, 'nacos registration failed, retrying')
        await sleep(delay, undefined, { signal: stopping.signal }).catch(() => {})
        delay = Math.min(delay * 2, 30_000)
      }
    }
  }

  async function drain(): Promise<void> {
    draining = true
    stopping.abort()
    await registering
    if (instance !== undefined && client.naming.isRegistered(opts.service, instance)) {
      try {
        await client.naming.deregister(opts.service, instance)
      } catch (err) {
        fastify.log.warn({ err, service: opts.service }, 'nacos deregistration failed')
      }
    }
    registered = false
    if (opts.drainMs > 0) await sleep(opts.drainMs)
  }
}

function createClient(options: NacosClientOptions, fastify: FastifyInstance): NacosClient {
  try {
    return new NacosClient({ logger: fastify.log.child({ module: 'nacos' }), ...options })
  } catch (err) {
    // Name the field as the plugin user wrote it: nacos.<field>.
    if (err instanceof NacosError && err.code === 'FLOWTAG_NACOS_BAD_OPTION') {
      throw new NacosError('FLOWTAG_NACOS_BAD_OPTION', err.message.replace('invalid option "', 'invalid option "nacos.'))
    }
    throw err
  }
}

function advertised(fastify: FastifyInstance, ip: string | undefined, port: number | undefined): { ip: string; port: number } {
  const addr = fastify.server.address() as AddressInfo | string | null
  const listened = typeof addr === 'object' && addr !== null ? addr : undefined
  const host = listened?.address
  const wildcard = host === undefined || host === '0.0.0.0' || host === '::'
  const resolvedPort = port ?? listened?.port
  if (resolvedPort === undefined) throw new NacosError('FLOWTAG_NACOS_BAD_OPTION', 'invalid option "port": not listening on a TCP port; set port')
  return { ip: ip ?? (wildcard ? externalIPv4() : (host as string)), port: resolvedPort }
}

export const fastifyNacos = fp(fastifyNacosPlugin, { fastify: '5.x', name: '@flowtag/nacos' })
export default fastifyNacos
