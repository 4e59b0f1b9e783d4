/**
 * The Express request half's own CPU per request (`flowTagRequests`: tagging, entering the flow,
 * the receipt's writeHead, the metrics listener), in one process, without sockets: each request is
 * a real IncomingMessage/ServerResponse pair on an Express app's prototypes, answered with
 * writeHead + end, then closed. Against a pass-through middleware, paired per round (variants
 * rotated each round), with the pieces alone: `decide` (the tagger), `decide+run` (and entering
 * AsyncLocalStorage). The Nest bench (packages/nestjs/bench/overhead.ts) measures the whole
 * server; this one isolates the middleware, which a loaded machine cannot in that bench.
 *
 *   node bench/express-requests.ts [--requests 40000] [--rounds 16] [--metrics] (--metrics: an SDK MeterProvider)
 */
import { IncomingMessage, ServerResponse } from 'node:http'
import { metrics } from '@opentelemetry/api'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { runWithFlow } from '@flowtag/context'
import { ExpressFacts } from '@flowtag/context/express'
import { loadAverage, machine, median, numberArg } from '@flowtag/test-kit/bench'
import express, { type NextFunction, type Request, type Response } from 'express'
import { flowTagRequests } from '../src/express.ts'
import { createFlowTagService } from '../src/index.ts'

type Middleware = (req: Request, res: Response, next: NextFunction) => void

const withSdk = process.argv.includes('--metrics')
if (withSdk) metrics.setGlobalMeterProvider(new MeterProvider())
const service = createFlowTagService({ service: 'bench-item', version: 'v1', nacos: { serverAddr: '127.0.0.1:1' }, cacheDir: false, registration: false })
const { tagger } = service
const app = express()
let sink = 0
const variants: Record<string, Middleware> = {
  'pass-through': (_req, _res, next) => next(),
  decide: (req, _res, next) => { req.flow = tagger.decide(new ExpressFacts(req)); next() },
  'decide+run': (req, _res, next) => { const flow = tagger.decide(new ExpressFacts(req)); req.flow = flow; runWithFlow(flow, next) },
  flowTagRequests: flowTagRequests(service)
}

function serve (mw: Middleware, i: number): void {
  const req = new IncomingMessage(null as never) as unknown as Request
  Object.setPrototypeOf(req, app.request)
  req.method = 'GET'
  req.url = req.originalUrl = '/item'
  req.baseUrl = ''
  req.headers = { host: '127.0.0.1', accept: '*/*', 'x-flow-tag': (i & 1) === 0 ? 'v2' : 'v1' }
  const res = new ServerResponse(req) as unknown as Response
  Object.setPrototypeOf(res, app.response)
  mw(req, res, () => { sink += req.flow?.tag?.length ?? 1 })
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end('{"sku":"a-1"}')
  res.emit('close')
}

const requests = numberArg('--requests', 40000)
const rounds = numberArg('--rounds', 16)
const names = Object.keys(variants)
const loadStart = loadAverage()
for (const name of names) for (let i = 0; i < requests; i++) serve(variants[name]!, i) // warm-up
const us: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(k + r) % names.length]!
    const start = process.cpuUsage()
    for (let i = 0; i < requests; i++) serve(variants[name]!, i)
    const cpu = process.cpuUsage(start)
    us[name]!.push((cpu.user + cpu.system) / requests)
  }
}
console.log(`${machine()}; load average ${loadStart} at start, ${loadAverage()} at the end; ${rounds} rounds of ${requests} requests per variant; metrics ${withSdk ? 'into an SDK MeterProvider' : 'through the API alone (no MeterProvider)'}`)
for (const name of names) {
  const over = us[name]!.map((x, i) => x - us['pass-through']![i]!)
  console.log(`${name.padEnd(16)} ${median(us[name]!).toFixed(2)} µs/request` + (name === 'pass-through' ? '' : `, ${median(over).toFixed(2)} µs over the pass-through (median of the rounds' differences)`))
}
if (sink === 0) throw new Error('no request ran')
await service.close()
