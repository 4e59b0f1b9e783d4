// The dispatcher dressed as an instance of another undici's Dispatcher class, so that the APIs a
// caller uses on it (request(), stream(), …) are that undici's, for callers that need that class.
import { z } from 'zod'
import { describeBadOption } from '@flowtag/errors'
import { errorCodes, OutboundError } from './errors.ts'

const PKG = '@flowtag/outbound'

type DispatchFn = (opts: never, handler: never) => boolean

/** What is needed of the other undici's `Dispatcher` class: it can be extended and has compose(). */
interface DispatcherBase {
  compose (interceptor: (dispatch: DispatchFn) => DispatchFn): unknown
}

/** The parts of a FlowTagDispatcher the bridge forwards to. */
interface Target {
  dispatch (opts: never, handler: never): boolean
  close (): Promise<void>
  destroy (err?: Error | null): Promise<void>
}

const classSchema = z.custom<abstract new () => DispatcherBase>(
  (v) => typeof v === 'function' && typeof (v as { prototype?: { compose?: unknown } }).prototype?.compose === 'function' && typeof (v as { prototype?: { request?: unknown } }).prototype?.request === 'function',
{ message: 'expected an undici Dispatcher class (with compose() and request()), e.g. Dispatcher of undici 7' }
)
const targetSchema = z.custom<Target>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Target).dispatch === 'function' && typeof (v as Target).close === 'function' && typeof (v as Target).destroy === 'function',
  { message: 'expected a dispatcher (a FlowTagDispatcher)' }
)
const argsSchema = z.strictObject({ Dispatcher: classSchema, dispatcher: targetSchema })

/**
 * `dispatcher` (a FlowTagDispatcher) as an instance of `Dispatcher`, the Dispatcher class of
 * another undici major (e.g. `import { Dispatcher } from 'undici'` where that resolves to
 * undici 7): `request()`, `stream()`, `pipeline()`, `connect()` and `upgrade()` of the returned
 * object are that undici's, and each dispatch goes through `dispatcher` (lanes, retries,
 * metrics). Handlers of that undici's older callback API (`onConnect`, `onHeaders`, …) are
 * converted by its own `compose()` to the API this package uses. `close()` and `destroy()` close
 * or destroy `dispatcher`.
 *
 * `@fastify/reply-from` does not need it: given the dispatcher itself as its `undici` option it
 * calls undici 8's request(), whose requests no longer outlive young-generation collections since
 * the dispatcher's caller controller lets go of each request at its end (BENCHMARKS.md, "Gateway hop").
 *
 * @example
 * import { Dispatcher as Dispatcher7 } from 'undici7'   // npm:undici@7, or reply-from's own
 * await app.register(replyFrom, { base: 'http://order-service', undici: dispatcherOf(Dispatcher7, app.outbound) })
 * @throws {OutboundError} `FLOWTAG_OUTBOUND_BAD_OPTION` when `Dispatcher` is not a Dispatcher class or `dispatcher` not a dispatcher
 */
export function dispatcherOf<D> (Dispatcher: abstract new () => D, dispatcher: Target): D {
  const parsed = argsSchema.safeParse({ Dispatcher, dispatcher })
  if (!parsed.success) {
    const bad = describeBadOption(PKG, parsed.error)
    throw new OutboundError(errorCodes.BAD_OPTION, bad.message, '', undefined, bad)
  }
  const Base = Dispatcher as unknown as abstract new () => DispatcherBase
  class Bridge extends Base {
    dispatch (opts: never, handler: never): boolean {
      return dispatcher.dispatch(opts, handler)
    }

    close (callback?: () => void): Promise<void> | undefined {
      const done = dispatcher.close()
      if (callback === undefined) return done
      done.then(callback, callback)
      return undefined
    }

    destroy (err?: Error | null | (() => void), callback?: () => void): Promise<void> | undefined {
      const cb = typeof err === 'function' ? err : callback
      const done = dispatcher.destroy(typeof err === 'function' ? null : (err ?? null))
      if (cb === undefined) return done
      done.then(cb, cb)
      return undefined
    }
  }
  // compose() with an interceptor that changes nothing: undici 7 wraps each handler given to
  // the composed dispatch in its WrapHandler (callback API → the v2 handler API).
  return new Bridge().compose((dispatch) => dispatch) as D
}
