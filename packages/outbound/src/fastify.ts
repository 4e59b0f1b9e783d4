// Fastify plugin: one FlowTagDispatcher per app, as `fastify.outbound`, closed on onClose.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import { FlowTagDispatcher } from './dispatcher.ts'
import { badOption } from '@flowtag/errors'
import { errorCodes, OutboundError } from './errors.ts'
import type { OutboundOptions } from './options.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Discovery-aware undici dispatcher: `request('http://<service>/path', { dispatcher: fastify.outbound })`. */
    outbound: FlowTagDispatcher
  }
}

export interface FastifyOutboundOptions extends OutboundOptions {
  /** undici interceptors composed on top (e.g. `interceptors.responseError()`); the last is outermost. */
  interceptors?: Dispatcher.DispatcherComposeInterceptor[]
}

const fastifyOutboundPlugin: FastifyPluginAsync<FastifyOutboundOptions> = async function fastifyOutboundPlugin (fastify: FastifyInstance, options: FastifyOutboundOptions) {
  const { interceptors, ...outboundOptions } = options
  if (interceptors !== undefined && (!Array.isArray(interceptors) || interceptors.some((i) => typeof i !== 'function'))) {
    const bad = badOption('@flowtag/outbound', 'interceptors', 'expected an array of undici interceptors')
    throw new OutboundError(errorCodes.BAD_OPTION, bad.message, '', undefined, bad)
  }
  const dispatcher = new FlowTagDispatcher(outboundOptions)
  // A composed dispatcher is a Proxy of the same instance: snapshot() and close() still work.
  const outbound = (interceptors === undefined || interceptors.length === 0 ? dispatcher : dispatcher.compose(interceptors)) as FlowTagDispatcher

  fastify.decorate('outbound', outbound)
  // onClose runs after in-flight requests have drained; the discovery is the caller's to close.
  fastify.addHook('onClose', async function closeOutbound () {
    await dispatcher.close()
  })
}

export const fastifyOutbound = fp(fastifyOutboundPlugin, { fastify: '5.x', name: '@flowtag/outbound' })
export default fastifyOutbound
