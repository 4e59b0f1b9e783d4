// The retry controller: the caller gets one controller for the whole request, and its pause,
// resume and abort reach whichever attempt is live, also across a retry on another instance.
// Driven with recording pools and controllers, so each step of the hand-over is observable.
import t from 'tap'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Instance } from '@flowtag/nacos'
import { createMetrics } from '../src/metrics.ts'
import { OutboundHandler, isConnectionError, isRetryable, isStaleConnection, type AttemptContext } from '../src/outbound-handler.ts'
import { ServiceTable } from '../src/service-table.ts'
import { defaultPoolFactory } from '../src/instance-pool.ts'
import { DEFAULT_RETRY_BUDGET, type RetryBudgetPolicy } from '../src/retry-budget.ts'
import { DEFAULT_WARMUP } from '../src/warmup.ts'

type Controller = Dispatcher.DispatchController

class RecordingController implements Controller {
  readonly calls: string[] = []
  aborted = false
  paused = false
  reason: Error | null = null
  rawHeaders: Controller['rawHeaders'] = null
  rawTrailers: Controller['rawTrailers'] = null
  readonly name: string
  constructor (name: string) { this.name = name }
  abort (reason: Error): void { this.calls.push(`abort:${reason.message}`); this.aborted = true; this.reason = reason }
  pause (): void { this.calls.push('pause'); this.paused = true }
  resume (): void { this.calls.push('resume'); this.paused = false }
}

interface Sent { port: number, handler: Dispatcher.DispatchHandler }

const instance = (port: number): Instance => ({
  instanceId: `127.0.0.1#${port}`,
  ip: '127.0.0.1',
  port,
  weight: 1,
  healthy: true,
  enabled: true,
  ephemeral: true,
  clusterName: 'DEFAULT',
  serviceName: 'svc',
  metadata: { version: 'v1' }
})

/** A table of `ports` whose pools record what is sent to them instead of opening connections. */
function setup (ports: number[], maxRetries = 1, retryBudget: RetryBudgetPolicy | false = DEFAULT_RETRY_BUDGET) {
  const table = new ServiceTable({
    service: 'svc',
    labelKey: 'version',
    protocol: 'http:',
    poolOptions: { connections: null, connectTimeout: 2000, headersTimeout: 30_000, bodyTimeout: 30_000, keepAliveTimeout: 4000 },
    factory: defaultPoolFactory,
    outlier: { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50, count5xx: false },
    warmup: DEFAULT_WARMUP,
    retryBudget
  }, 'v1')
  table.update(ports.map(instance))
  const sent: Sent[] = []
  for (const m of table.members.values()) {
    const port = m.instance.port
    m.pool = { dispatch: (_o: unknown, handler: Dispatcher.DispatchHandler) => { sent.push({ port, handler }); return true }, close: async () => {} } as never
  }
  const ctx: AttemptContext = { table, route: { stable: 'v1', strict: false, weights: undefined }, tag: undefined, metrics: createMetrics(), maxRetries, staleRetry: false }
  return { table, ctx, sent }
}

/** The caller's side: records what reaches it and keeps the controller it was given. */
function caller () {
  const seen: string[] = []
  const h = {
    controller: null as Controller | null,
    seen,
    onRequestStart (c: Controller) { h.controller = c; seen.push('start') },
    onResponseStart (_c: Controller, status: number) { seen.push(`status:${status}`) },
    onResponseData (_c: Controller, chunk: Buffer) { seen.push(`data:${chunk}`) },
    onResponseEnd () { seen.push('end') },
    onResponseError (_c: Controller | null, err: Error) { seen.push(`error:${(err as { code?: string }).code ?? err.message}`) }
  }
  return h
}

const reset = () => Object.assign(new Error('socket reset'), { code: 'ECONNRESET' })

t.test('a pause before a retry holds the new attempt; resume and abort reach it, not the dead one', async (t) => {
  const { ctx, sent } = setup([9001, 9002])
  const c = caller()
  const first = sent.length
  const h = new OutboundHandler(c, ctx, { method: 'GET', path: '/', origin: 'http://127.0.0.1:9001' } as never, [...ctx.table.members.values()][0]!)
  h.send()
  t.equal(sent.length, first + 1)
  const a = new RecordingController('a')
  sent[0]!.handler.onRequestStart!(a, {})
  t.same(c.seen, ['start'])
  c.controller!.pause()
  t.same(a.calls, ['pause'], 'the caller\'s pause reaches the live attempt')
  t.equal(c.controller!.paused, true)

  sent[0]!.handler.onResponseError!(a, reset())
  t.equal(sent.length, 2, 'retried on the other instance')
  t.not(sent[1]!.port, sent[0]!.port)
  const b = new RecordingController('b')
  sent[1]!.handler.onRequestStart!(b, {})
  t.same(c.seen, ['start'], 'the caller sees one start for the whole request')
  t.same(b.calls, ['pause'], 'the new attempt starts paused, as the caller asked')

  c.controller!.resume()
  t.same(b.calls, ['pause', 'resume'])
  t.same(a.calls, ['pause'], 'the dead attempt is left alone')
  t.equal(c.controller!.paused, false)

  t.equal(c.controller!.aborted, false)
  b.aborted = true
  b.reason = new Error('from below')
  t.equal(c.controller!.aborted, true, 'aborted reflects the live attempt')
  t.equal(c.controller!.reason?.message, 'from below', 'and so does reason')

  const why = new Error('caller gave up')
  c.controller!.abort(why)
  c.controller!.abort(new Error('twice'))
  t.same(b.calls, ['pause', 'resume', 'abort:caller gave up'], 'abort reaches the live attempt once')
  t.equal(c.controller!.reason, why, 'the caller\'s reason wins')
})

t.test('an abort between attempts is applied to the next attempt as it starts', async (t) => {
  const { ctx, sent } = setup([9011, 9012])
  const c = caller()
  new OutboundHandler(c, ctx, { method: 'GET', path: '/', origin: 'x' } as never, [...ctx.table.members.values()][0]!).send()
  const a = new RecordingController('a')
  sent[0]!.handler.onRequestStart!(a, {})
  sent[0]!.handler.onResponseError!(a, reset())
  t.equal(sent.length, 2)
  const stable = c.controller!
  t.equal(stable.reason, null, 'no reason while no attempt is live')
  stable.abort(new Error('stop'))
  t.equal(stable.aborted, true)
  const b = new RecordingController('b')
  sent[1]!.handler.onRequestStart!(b, {})
  t.same(b.calls, ['abort:stop'], 'the new attempt is aborted at once')

  // a connection error after the caller aborted is the caller's, never retried
  sent[1]!.handler.onResponseError!(b, reset())
  t.equal(sent.length, 2, 'not retried')
  t.same(c.seen, ['start', 'error:ECONNRESET'])
})

t.test('a response after a retry reaches the caller with the live attempt\'s headers and trailers', async (t) => {
  const { ctx, sent } = setup([9021, 9022])
  const c = caller()
  new OutboundHandler(c, ctx, { method: 'GET', path: '/', origin: 'x' } as never, [...ctx.table.members.values()][0]!).send()
  sent[0]!.handler.onResponseError!(null as never, Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))
  const b = Object.assign(new RecordingController('b'), { rawHeaders: [Buffer.from('x'), Buffer.from('1')], rawTrailers: [] })
  const h = sent[1]!.handler
  h.onRequestStart!(b as never, {})
  h.onResponseStart!(b as never, 200, {}, 'OK')
  h.onResponseData!(b as never, Buffer.from('hi'))
  h.onResponseEnd!(b as never, {})
  t.same(c.seen, ['start', 'status:200', 'data:hi', 'end'])
  t.same(c.controller!.rawHeaders, b.rawHeaders)
  t.same(c.controller!.rawTrailers, [])
})

t.test('no second retry past maxRetries; a non-connection error is passed on at once', async (t) => {
  const { ctx, sent } = setup([9031, 9032, 9033])
  const c = caller()
  new OutboundHandler(c, ctx, { method: 'GET', path: '/', origin: 'x' } as never, [...ctx.table.members.values()][0]!).send()
  sent[0]!.handler.onResponseError!(null as never, reset())
  sent[1]!.handler.onResponseError!(null as never, reset())
  t.equal(sent.length, 2, 'one retry, as configured')
  t.same(c.seen, ['error:ECONNRESET'])

  const c2 = caller()
  new OutboundHandler(c2, ctx, { method: 'GET', path: '/', origin: 'x' } as never, [...ctx.table.members.values()][0]!).send()
  sent.at(-1)!.handler.onResponseError!(null as never, Object.assign(new Error('bad'), { code: 'UND_ERR_INVALID_ARG' }))
  t.equal(sent.length, 3, 'not retried')
  t.same(c2.seen, ['error:UND_ERR_INVALID_ARG'])
})

t.test('a spent retry budget: no retry on another instance, no stale-connection resend; refusals counted', async (t) => {
  const refusals: Array<Record<string, unknown>> = []
  const meter = { createCounter: (name: string) => ({ add: (_v: number, attrs: Record<string, unknown>) => { if (name === 'flowtag.outbound.retries_refused') refusals.push(attrs) } }), createHistogram: () => ({ record: () => {} }) }
  const spent = { percent: 0, intervalMs: 10_000, minRetriesPerSecond: 0 }

  const two = setup([9051, 9052], 1, spent)
  two.ctx.metrics = createMetrics(meter as never)
  two.ctx.staleRetry = true
  const c = caller()
  new OutboundHandler(c, two.ctx, { method: 'GET', path: '/', origin: 'x' } as never, [...two.table.members.values()][0]!).send()
  const stale = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET', socket: { bytesRead: 100 } })
  two.sent[0]!.handler.onResponseError!(null as never, stale)
  t.equal(two.sent.length, 1, 'not retried on the other instance, nor resent on a fresh connection')
  t.same(c.seen, ['error:UND_ERR_SOCKET'], 'the caller gets the failure')
  t.match(refusals, [{ service: 'svc', lane: 'v1', instance: '127.0.0.1:9051' }], 'one refusal, counted against the instance that failed')

  // One instance: the stale-connection resend alone asks the budget.
  const one = setup([9061], 1, spent)
  one.ctx.metrics = createMetrics(meter as never)
  one.ctx.staleRetry = true
  const member = [...one.table.members.values()][0]!
  const fresh: unknown[] = []
  one.table.sendFresh = (...args: unknown[]) => { fresh.push(args); return true }
  const c1 = caller()
  new OutboundHandler(c1, one.ctx, { method: 'GET', path: '/', origin: 'x' } as never, member).send()
  one.sent[0]!.handler.onResponseError!(null as never, stale)
  t.equal(fresh.length, 0, 'no fresh connection')
  t.same(c1.seen, ['error:UND_ERR_SOCKET'])
  t.equal(refusals.length, 2)
  t.equal(member.budget?.refused, 1)

  // The same with budgets off: resent on a fresh connection.
  const off = setup([9071], 1, false)
  off.ctx.staleRetry = true
  const offFresh: unknown[] = []
  off.table.sendFresh = (...args: unknown[]) => { offFresh.push(args); return true }
  new OutboundHandler(caller(), off.ctx, { method: 'GET', path: '/', origin: 'x' } as never, [...off.table.members.values()][0]!).send()
  off.sent[0]!.handler.onResponseError!(null as never, stale)
  t.equal(offFresh.length, 1, 'retryBudget: false: the resend goes out')
})

t.test('the retry predicates', async (t) => {
  t.ok(isRetryable({ method: 'GET', path: '/' } as never))
  t.ok(isRetryable({ method: 'PUT', path: '/', body: 'x' } as never))
  t.notOk(isRetryable({ method: 'POST', path: '/' } as never), 'POST is not idempotent')
  t.notOk(isRetryable({ method: 'PUT', path: '/', body: (async function * () {})() } as never), 'a stream cannot be replayed')
  t.ok(isConnectionError({ code: 'ECONNREFUSED' }))
  t.notOk(isConnectionError({ code: 'UND_ERR_HEADERS_TIMEOUT' }))
  t.notOk(isConnectionError(null))
  t.ok(isStaleConnection({ code: 'ECONNRESET' }), 'raw resets carry no counts')
  t.ok(isStaleConnection({ code: 'UND_ERR_SOCKET', socket: { bytesRead: 10 } }), 'a socket that served before')
  t.notOk(isStaleConnection({ code: 'UND_ERR_SOCKET', socket: { bytesRead: 0 } }), 'a fresh socket')
  t.notOk(isStaleConnection({ code: 'ECONNREFUSED' }))
})

t.test('a body stream that failed before the request was sent: the failure is the caller\'s', async (t) => {
  const { ctx, sent } = setup([9041, 9042])
  const member = [...ctx.table.members.values()][0]!
  const body = new Readable({ read () {} })
  body.on('error', () => {})
  body.destroy(reset())
  const c = caller()
  new OutboundHandler(c, ctx, { method: 'PUT', path: '/', origin: 'x', body } as never, member).send()
  sent[0]!.handler.onResponseError!(null as never, reset())
  t.equal(sent.length, 1, 'not retried')
  t.equal(member.consecutiveFailures, 0, 'not counted against the instance')
  t.same(c.seen, ['error:ECONNRESET'], 'the error reaches the caller')
})

t.test('an answer\'s hop-by-hop headers stay with the dispatcher; headers and raw headers agree', async (t) => {
  const { ctx, sent } = setup([9051])
  const got: Array<{ headers: Record<string, unknown>, raw: unknown }> = []
  const h = {
    onResponseStart (c: Controller, _status: number, headers: Record<string, unknown>) { got.push({ headers, raw: Array.isArray(c.rawHeaders) ? c.rawHeaders.map(String) : null }) },
    onResponseError () {}
  }
  const member = [...ctx.table.members.values()][0]!
  const headers = { connection: 'keep-alive, X-Hop', 'keep-alive': 'timeout=5', 'x-hop': '1', 'transfer-encoding': 'chunked', 'x-end': 'e' }
  const raw = ['Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=5', 'X-Hop', '1', 'Transfer-Encoding', 'chunked', 'X-End', 'e'].map((v) => Buffer.from(v))
  for (const rawHeaders of [raw, undefined]) {
    new OutboundHandler(h as never, ctx, { method: 'GET', path: '/', origin: 'x' } as never, member).send()
    sent.at(-1)!.handler.onResponseStart!(Object.assign(new RecordingController('a'), { rawHeaders }) as never, 200, { ...headers }, 'OK')
  }
  t.same(got[0], { headers: { 'x-end': 'e' }, raw: ['X-End', 'e'] })
  t.same(got[1], { headers: { 'x-end': 'e' }, raw: null }, 'no raw headers to filter: none handed on')
  new OutboundHandler(h as never, ctx, { method: 'GET', path: '/', origin: 'x' } as never, member).send()
  const plain = { 'content-type': 'text/plain' }
  sent.at(-1)!.handler.onResponseStart!(new RecordingController('b'), 200, plain, 'OK')
  t.equal(got[2]!.headers, plain, 'an answer without hop-by-hop headers is handed on as it is')
})
