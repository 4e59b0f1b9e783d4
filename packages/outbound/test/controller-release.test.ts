// What the controller the dispatcher hands to a caller's handler keeps alive once the request has
// ended. undici 8's request() (what @fastify/reply-from calls on the dispatcher) keeps that
// controller in a closure of its handler that young-generation collections do not free with the
// request; while it held the connection's controller, each request's whole object graph (request,
// handlers, body stream, headers) survived those collections: about 10 times the GC time per
// request, ≈ 1.1-1.4x the CPU per request of stock reply-from (BENCHMARKS.md, "Gateway hop").
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { Pool, type Dispatcher } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import { FlowTagDispatcher } from '../src/index.ts'
import { startInstance } from './fixtures/instances.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

type Handler = Dispatcher.DispatchHandler
type Controller = Parameters<NonNullable<Handler['onRequestStart']>>[0]

/** Pools that note (weakly) the controller of each connection attempt they start. */
function spyingPools () {
  const attempts: Array<WeakRef<object>> = []
  const factory = (origin: string, options: Pool.Options) => {
    const pool = new Pool(origin, options)
    const dispatch = pool.dispatch.bind(pool)
    pool.dispatch = (opts: Dispatcher.DispatchOptions, handler: Handler) => dispatch(opts, {
      onRequestStart: (c: Controller, context: unknown) => {
        attempts.push(new WeakRef(c))
        handler.onRequestStart?.(c, context)
      },
      onResponseStart: (...a) => handler.onResponseStart?.(...a),
      onResponseData: (...a) => handler.onResponseData?.(...a),
      onResponseEnd: (...a) => handler.onResponseEnd?.(...a),
      onResponseError: (...a) => handler.onResponseError?.(...a)
    })
    return pool
  }
  return { attempts, factory }
}

/** A caller that keeps the controller it was given, as undici 8's request() does; resolves at the end. */
function send (d: FlowTagDispatcher, kept: Controller[]): Promise<number> {
  return new Promise((resolve, reject) => {
    let status = 0
    d.dispatch({ origin: 'http://svc', path: '/x', method: 'GET' }, {
      onRequestStart: (c) => { kept.push(c) },
      onResponseStart: (_c, statusCode) => { status = statusCode },
      onResponseData: () => {},
      onResponseEnd: () => resolve(status),
      onResponseError: (_c, err) => reject(err)
    })
  })
}

t.test('a kept caller controller does not keep the connection\'s controller (nor the request) alive after the end', async (t) => {
  const inst = await startInstance(t, 'one', 'v1')
  const { attempts, factory } = spyingPools()
  const d = new FlowTagDispatcher({ discovery: new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port: inst.port, metadata: { version: 'v1' } }] }), stableLane: 'v1', factory })
  t.teardown(() => d.close())
  const kept: Controller[] = []
  for (let i = 0; i < 5; i++) t.equal(await send(d, kept), 200)
  t.equal(attempts.length, 5)
  // WeakRefs are cleared by a full collection once their target is unreachable (not within the
  // task that last read them): collect, give the event loop a turn, look again.
  await waitFor('the connection controllers of ended requests to be collected', async () => {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
    return attempts.every((a) => a.deref() === undefined) || undefined
  }, 5_000)
  t.equal(kept.length, 5, 'the caller still holds each controller it was given')
  t.notOk(kept[0]!.aborted, 'an ended request\'s controller reads as not aborted')
  kept[0]!.resume()
  kept[0]!.pause()
  kept[0]!.abort(new Error('late'))
  t.ok(kept[0]!.aborted, 'and can still be used: it acts on nothing')
})
