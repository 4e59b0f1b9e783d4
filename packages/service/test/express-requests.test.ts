// The Express request half (flowTagRequests) keeps its per-request state on the response, with
// shared functions for the receipt (writeHead) and the metrics (close): what each request gets
// must not change with that. Real requests over loopback.
import { metrics } from '@opentelemetry/api'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { currentFlow } from '@flowtag/context'
import { recordFallback } from '@flowtag/context/internals'
import { listenOnLoopback, waitFor } from '@flowtag/test-kit'
import express, { type NextFunction, type Request, type Response } from 'express'
import { createServer } from 'node:http'
import t from 'tap'
import { flowTagRequests } from '../src/express.ts'
import { createFlowTagService, type FlowTagServiceOptions } from '../src/index.ts'

class TestReader extends MetricReader {
  protected async onForceFlush (): Promise<void> {}
  protected async onShutdown (): Promise<void> {}
}

const nacos = { serverAddr: '127.0.0.1:1' }

function serviceFor (t: { teardown (fn: () => unknown): void }, options: Partial<FlowTagServiceOptions> = {}) {
  const service = createFlowTagService({ service: 'express-requests', version: 'v2', nacos, cacheDir: false, registration: false, ...options })
  t.teardown(() => service.close())
  return service
}

async function serve (t: { teardown (fn: () => unknown): void }, app: express.Express): Promise<string> {
  const server = createServer(app)
  const port = await listenOnLoopback(server)
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  return `http://127.0.0.1:${port}`
}

/** Everything the tagger counted: any request it decided moves one of these. */
function decided (stats: Record<string, number>): number {
  return Object.values(stats).reduce((s, n) => s + n, 0)
}

t.test('probes and the scrape are answered before tagging: the tagger never sees them', async (t) => {
  const service = serviceFor(t, { metrics: { serve: true } })
  const app = express()
  app.use(flowTagRequests(service))
  app.get('/work', (req, res) => { res.json({ lane: req.flow.tag ?? null }) })
  const base = await serve(t, app)
  const headers = { 'x-flow-tag': 'v2' }
  for (const path of ['/health', '/ready', '/metrics']) {
    for (const method of ['GET', 'HEAD']) {
      const res = await fetch(`${base}${path}`, { method, headers })
      await res.arrayBuffer()
      t.equal(res.status, 200, `${method} ${path}`)
      t.equal(res.headers.get('x-flowtag-fallback'), null)
    }
  }
  t.equal(decided(service.tagger.stats as unknown as Record<string, number>), 0, 'no probe or scrape was tagged')
  t.same(await (await fetch(`${base}/work`, { headers })).json(), { lane: 'v2' })
  t.equal(service.tagger.stats.trusted, 1, 'a user request is tagged')
  const posted = await fetch(`${base}/health`, { method: 'POST', headers })
  await posted.arrayBuffer()
  t.equal(posted.status, 404, 'POST /health is no probe: it goes on to the app')
  t.equal(service.tagger.stats.trusted, 2, 'and is tagged like any request')
})

t.test('fallback receipts: the header when a hop left the lane, through other writeHead wrappers, mounted twice with a wrapper between', async (t) => {
  const service = serviceFor(t)
  const app = express()
  let outerCalls = 0
  // another middleware that wraps writeHead (as on-headers does): it must still run
  const wrap = (_req: Request, res: Response, next: NextFunction) => {
    const writeHead = res.writeHead
    res.writeHead = function outer (this: Response, ...args: Parameters<Response['writeHead']>) {
      outerCalls++
      return writeHead.apply(this, args)
    } as Response['writeHead']
    next()
  }
  app.use(wrap)
  const requests = flowTagRequests(service)
  app.use(requests)
  app.get('/fell', (req, res) => {
    recordFallback(req.flow, 'user-service', 'v2', 'v1', 'no-instance')
    res.json({ lane: req.flow.tag ?? null, same: currentFlow() === req.flow })
  })
  app.get('/stayed', (req, res) => { res.json({ lane: req.flow.tag ?? null }) })
  app.get('/head', (_req, res) => {
    // headers written explicitly, then the fallback: too late for the header, and no error
    res.writeHead(200, { 'content-type': 'text/plain' })
    recordFallback(currentFlow()!, 'user-service', 'v2', 'v1', 'no-instance')
    res.end('done')
  })
  const twice = express.Router()
  twice.use(wrap)
  twice.use(requests)
  twice.get('/fell', (req, res) => {
    recordFallback(req.flow, 'cart-service', 'v3', 'v1', 'ejected')
    res.json({ lane: req.flow.tag ?? null, same: currentFlow() === req.flow })
  })
  app.use('/twice', twice)
  const base = await serve(t, app)

  const fell = await fetch(`${base}/fell`, { headers: { 'x-flow-tag': 'v2' } })
  t.same(await fell.json(), { lane: 'v2', same: true }, 'the route runs in the request\'s flow')
  t.equal(fell.headers.get('x-flowtag-fallback'), 'user-service:v2>v1(no-instance)')
  const stayed = await fetch(`${base}/stayed`, { headers: { 'x-flow-tag': 'v2' } })
  await stayed.arrayBuffer()
  t.equal(stayed.headers.get('x-flowtag-fallback'), null, 'no receipt for a request that stayed in its lane')
  const head = await fetch(`${base}/head`, { headers: { 'x-flow-tag': 'v2' } })
  t.equal(await head.text(), 'done')
  t.equal(head.headers.get('x-flowtag-fallback'), null)
  t.equal(outerCalls, 3, 'the writeHead wrapped before the middleware ran once per response')

  // the request half mounted twice (the app, then a router), another wrapper between the two:
  // one receipt, the latest flow's, and every wrapper runs once
  const again = await fetch(`${base}/twice/fell`, { headers: { 'x-flow-tag': 'v3' } })
  t.same(await again.json(), { lane: 'v3', same: true })
  t.equal(again.headers.get('x-flowtag-fallback'), 'cart-service:v3>v1(ejected)')
  t.equal(outerCalls, 5)
})

t.test('metrics: lane, route and status per response; a request the client abandons counts as aborted', async (t) => {
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(provider)
  t.teardown(async () => { await provider.shutdown(); metrics.disable() })
  const service = serviceFor(t)
  const app = express()
  app.use(flowTagRequests(service))
  app.get('/ok/:id', (_req, res) => { res.json({ ok: true }) })
  app.get('/fail', (_req, res) => { res.status(503).json({ ok: false }) })
  let arrived = false
  let release: () => void = () => {}
  app.get('/slow', (_req, res) => {
    arrived = true
    new Promise<void>((resolve) => { release = resolve }).then(() => { if (!res.destroyed) res.json({ late: true }) }, () => {})
  })
  const base = await serve(t, app)
  t.teardown(() => release())

  for (const lane of ['v1', 'v2', 'v2']) await (await fetch(`${base}/ok/7`, { headers: { 'x-flow-tag': lane } })).arrayBuffer()
  await (await fetch(`${base}/fail`, { headers: { 'x-flow-tag': 'v2' } })).arrayBuffer()
  await (await fetch(`${base}/nope?q=1`)).arrayBuffer()
  const ac = new AbortController()
  const call = fetch(`${base}/slow`, { headers: { 'x-flow-tag': 'v3' }, signal: ac.signal })
  await waitFor('the slow request to reach its handler', () => arrived)
  ac.abort()
  await t.rejects(call)

  const points = async () => {
    const { resourceMetrics } = await reader.collect()
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
      .filter((m) => m.descriptor.name === 'http.server.request.duration')
      .flatMap((m) => m.dataPoints.map((p) => ({ attributes: p.attributes, count: (p.value as { count: number }).count })))
  }
  const all = await waitFor('six requests recorded', async () => {
    const p = await points()
    return p.reduce((s, x) => s + x.count, 0) >= 6 ? p : undefined
  }, 5000)
  const count = (match: Record<string, unknown>) => all.filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v)).reduce((s, p) => s + p.count, 0)
  t.equal(count({ 'flowtag.lane': 'v2', 'http.route': '/ok/:id', 'http.response.status_code': 200, 'flowtag.version': 'v2' }), 2)
  t.equal(count({ 'flowtag.lane': 'v1', 'http.route': '/ok/:id', 'http.response.status_code': 200 }), 1)
  t.equal(count({ 'flowtag.lane': 'v2', 'http.route': '/fail', 'error.type': '503' }), 1)
  t.equal(count({ 'flowtag.lane': 'none', 'http.response.status_code': 404 }), 1, 'an untagged request to no route')
  t.equal(count({ 'flowtag.lane': 'v3', 'http.route': '/slow', 'error.type': 'aborted', 'http.request.method': 'GET' }), 1, 'the abandoned request, in its lane, without a status')
  t.equal(all.reduce((s, x) => s + x.count, 0), 6, 'each response recorded once')
})

t.test('without a MeterProvider nothing is timed: no close listener, and ServiceMetrics says it does not record', async (t) => {
  const closeListeners = async (options: Partial<FlowTagServiceOptions>) => {
    const service = serviceFor(t, options)
    const app = express()
    app.use(flowTagRequests(service))
    app.get('/count', (_req, res) => { res.json({ close: res.listenerCount('close') }) })
    const base = await serve(t, app)
    const body = await (await fetch(`${base}/count`, { headers: { 'x-flow-tag': 'v2' } })).json() as { close: number }
    return { close: body.close, recording: service.metrics?.recording }
  }
  const off = await closeListeners({ metrics: false })
  const noProvider = await closeListeners({})
  t.equal(noProvider.recording, false, 'the API\'s no-op meter records nothing')
  t.equal(noProvider.close, off.close, 'no listener more than with metrics: false')

  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(provider)
  t.teardown(async () => { await provider.shutdown(); metrics.disable() })
  const withProvider = await closeListeners({})
  t.equal(withProvider.recording, true)
  t.equal(withProvider.close, off.close + 1, 'one close listener per response when something records')
})
