// What the dispatcher needs of the dispatcher behind one instance (undici's Pool by default), and
// the factory a user can give to supply it: a Pool or Client of the undici they already have
// (undici 7, bundled with @fastify/reply-from 12, fits), or one with tuned options.
import { Client, Pool, type Dispatcher } from 'undici'

/**
 * The per-instance dispatcher: `dispatch()` with a handler of undici's v2 handler API
 * (`onRequestStart`, `onResponseStart`, …; undici 7 converts it to its own), `close()` (graceful)
 * and `destroy(err)`. An undici 7 or 8 `Pool`, `Client` or `Agent` fits.
 */
export interface InstancePool {
  /**
   * `handler` is this package's v2-API handler. Typed `never` so that the handler types of any
   * undici major (7's differ from 8's in details this package does not use) are accepted.
   */
  dispatch (opts: Dispatcher.DispatchOptions, handler: never): boolean
  close (): Promise<void>
  destroy (err: Error | null): Promise<void>
}

/** Options handed to a {@link PoolFactory}: the dispatcher's own, as undici Pool options. */
export interface InstancePoolOptions {
  /** Connections to the instance (`null`: unlimited); `1` for a stale-connection retry. */
  connections: number | null
  /** ms */
  connectTimeout: number
  /** ms */
  headersTimeout: number
  /** ms */
  bodyTimeout: number
  /** ms */
  keepAliveTimeout: number
}

/**
 * `(origin, options) => dispatcher`, like undici Agent's `factory` option. `origin` is the
 * instance's `http://ip:port` (`[ip]` for IPv6). Pass `options` on to keep the dispatcher's
 * timeouts and connection limit, e.g. `(origin, opts) => new Pool(origin, opts)` of undici 7.
 */
export type PoolFactory = (origin: string, options: InstancePoolOptions) => InstancePool

/** The default: an undici 8 Pool, or a Client for one connection of its own. */
export const defaultPoolFactory: PoolFactory = (origin, options) => {
  if (options.connections === 1) {
    const { connections: _one, ...rest } = options
    return new Client(origin, rest)
  }
  return new Pool(origin, options)
}
