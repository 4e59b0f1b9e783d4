// Tag-loss detection through the dispatcher, with the usual culprits: a timer created at
// start-up, an event emitter fired from elsewhere, a callback-style connection pool and a queue
// consumer. A Fastify app tags requests; the upstream is a real process on loopback.
import { EventEmitter } from 'node:events'
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { resetTagLossCounts, setTagLossMode, tagLossCounts, errorCodes } from '@flowtag/context'
import { fastifyFlowTag } from '@flowtag/context/fastify'
import { FlowTagDispatcher } from '../src/index.ts'
import { startInstance } from './fixtures/instances.ts'

const upstream = await startInstance(t, 'up', 'v1')
const v2 = await startInstance(t, 'up2', 'v2')
const discovery = new StaticDiscovery({
  'user-service': [
    { ip: '127.0.0.1', port: upstream.port, metadata: { version: 'v1' } },
    { ip: '127.0.0.1', port: v2.port, metadata: { version: 'v2' } }
  ]
})
const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
t.teardown(() => dispatcher.close())

const URL = 'http://user-service/users/1'
// each culprit calls request() on its own line: that line is its call site
const json = (res: Awaited<ReturnType<typeof request>>) => res.body.json() as Promise<{ tag: string | null }>

const app = Fastify()
await app.register(fastifyFlowTag, { mode: 'service' })

// 1. a timer created at start-up: its callbacks never run in a request
const pending: Array<() => void> = []
const timer = setInterval(() => { while (pending.length > 0) pending.shift()!() }, 20)
t.teardown(() => clearInterval(timer))
app.get('/timer', async () => new Promise((resolve, reject) => {
  pending.push(() => { request(URL, { dispatcher }).then(json).then(resolve, reject) })
}))

// 2. an event emitter fired from outside the request: listeners run in the emitter's context
const bus = new EventEmitter()
const tick = setInterval(() => bus.emit('tick'), 20)
t.teardown(() => clearInterval(tick))
app.get('/emitter', async () => new Promise((resolve, reject) => {
  bus.once('tick', () => { request(URL, { dispatcher }).then(json).then(resolve, reject) })
}))

// 3. a callback-style connection pool: a waiting callback runs in the context of the request
//    that releases the resource, so it carries *that* request's flow
const waiting: Array<(release: () => void) => void> = []
let busy = false
const acquire = (cb: (release: () => void) => void) => {
  const release = () => { const next = waiting.shift(); if (next === undefined) busy = false; else next(release) }
  if (busy) waiting.push(cb)
  else { busy = true; cb(release) }
}
app.get<{ Querystring: { hold?: string } }>('/pool', async (req) => new Promise((resolve, reject) => {
  acquire((release) => {
    // forwards its own tag, as code that copies the inbound x-flow-tag does
    const own = req.flow.tag === undefined ? {} : { 'x-flow-tag': req.flow.tag }
    setTimeout(() => { request(URL, { dispatcher, headers: own }).then(json).then((r) => { release(); resolve(r) }, reject) }, Number(req.query.hold ?? 0))
  })
}))

// 4. a queue consumer started at start-up
const queue: Array<() => Promise<void>> = []
let wake: (() => void) | undefined
let consuming = true
const consumer = (async () => {
  while (consuming) {
    const job = queue.shift()
    if (job !== undefined) await job()
    else await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 50) })
  }
})()
t.teardown(async () => { consuming = false; wake?.(); await consumer })
app.get('/queue', async () => new Promise((resolve, reject) => {
  queue.push(() => request(URL, { dispatcher }).then(json).then(resolve, reject))
  wake?.()
}))

// the right way: a call awaited in the handler
app.get('/ok', async () => json(await request(URL, { dispatcher })))

await app.listen({ port: 0, host: '127.0.0.1' })
t.teardown(() => app.close())
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
const hit = async (path: string, tag = 'v2') => {
  const res = await request(`${base}${path}`, { headers: { 'x-flow-tag': tag } })
  return { status: res.statusCode, body: await res.body.json() as { tag?: string | null, code?: string, message?: string } }
}
const sum = (prefix: string) => Object.entries(tagLossCounts()).filter(([k]) => k.startsWith(prefix)).reduce((s, [, n]) => s + n, 0)

t.test('count mode: every culprit is counted per call site; the request still goes (untagged)', async (t) => {
  resetTagLossCounts()
  setTagLossMode('count')
  t.equal((await hit('/ok')).body.tag, 'v2', 'in the request: tagged, nothing counted')
  t.same(tagLossCounts(), {})
  for (const path of ['/timer', '/emitter', '/queue']) {
    const r = await hit(path)
    t.equal(r.status, 200)
    t.equal(r.body.tag, null, `${path}: the call left without the lane`)
  }
  const counts = tagLossCounts()
  t.equal(sum('missing '), 3)
  t.equal(Object.keys(counts).length, 3, `three call sites: ${Object.keys(counts).join('; ')}`)
  for (const k of Object.keys(counts)) t.match(k, /^missing test\/tag-loss\.test\.ts:\d+$/, 'the site is the test file line')

  // pool: request A (v1) holds the resource; B (v2) waits and is resumed inside A's release
  const a = hit('/pool?hold=150', 'v1')
  await new Promise((r) => setTimeout(r, 30))
  const b = await hit('/pool', 'v2')
  await a
  t.equal(b.body.tag, 'v1', 'B went out in A\'s lane: the bug')
  t.equal(sum('mismatch '), 1, 'and it was counted as a mismatch')
})

t.test('strict mode throws at the call site', async (t) => {
  setTagLossMode('strict')
  t.teardown(() => setTagLossMode('count'))
  for (const path of ['/timer', '/emitter', '/queue']) {
    const r = await hit(path)
    t.equal(r.status, 500, path)
    t.equal(r.body.code, errorCodes.TAG_LOST)
    t.match(r.body.message, /outside any request's async context/)
  }
  t.equal((await hit('/ok')).status, 200, 'correct code is untouched')
})
