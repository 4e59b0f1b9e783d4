// Mirrors end to end on loopback: the Nacos dev server, "orders" v1 (this process: the preset that
// mirrors), "orders" v2 and "ledger" as their own processes. A rule mirrors every GET into v2 as a
// shadow: the user's answer is v1's and never waits; v2's handler tries to POST to the ledger,
// which a shadow never reaches; both answers reach the comparer.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import express from 'express'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { waitFor } from '@flowtag/test-kit'
import { NacosClient } from '@flowtag/nacos'
import type { RuleSetInput } from '@flowtag/rules'
import { flowTagService } from '../src/express.ts'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { createFlowTagService, type ShadowComparer, type ShadowPair } from '../src/index.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

const script = fileURLToPath(new URL('./fixtures/mirror-app.ts', import.meta.url))

const rules: RuleSetInput = {
  version: 1,
  services: { orders: { stable: 'v1', candidates: ['v2'] }, ledger: { stable: 'v1' } },
  rules: [
    { name: 'testers', when: { headers: { 'x-tester': { equals: 'true' } } }, lane: 'v2' },
    { name: 'everyone', lane: 'v1', mirror: { lane: 'v2', percent: 100 } }
  ],
  default: 'v1'
}

/** Start a fixture process; resolves with its port once it listens. */
async function child (t: Test, addr: string, role: string): Promise<{ port: number, proc: ChildProcess }> {
  const proc = spawn(process.execPath, [script, addr, role, JSON.stringify(rules)], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  // a child under tap's loaders on a loaded machine can take many seconds to start
  await waitFor(`${role} listening`, () => /listening \d+/.test(out), 60_000)
  return { port: Number(/listening (\d+)/.exec(out)![1]), proc }
}

class Recorder implements ShadowComparer {
  readonly pairs: ShadowPair[] = []
  secondary = false
  compare (pair: ShadowPair): void { this.pairs.push(pair) }
  needsSecondary (): boolean { return this.secondary }
}

const json = (b: Buffer) => JSON.parse(b.toString()) as Record<string, unknown>

async function world (t: Test) {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const nacos = { serverAddr: dev.address, ...fastClient }
  const [v2, ledger] = await Promise.all([child(t, dev.address, 'orders-v2'), child(t, dev.address, 'ledger')])
  // registration runs in the background after listen: wait until Nacos lists both
  const admin = new NacosClient({ serverAddr: dev.address, ...fastClient })
  t.teardown(() => admin.close())
  await waitFor('orders v2 and ledger registered', async () => (await admin.naming.instances('ledger')).length === 1 && (await admin.naming.instances('orders')).length === 1, 30_000)
  return { nacos, v2, ledger }
}

t.test('Fastify: a mirrored GET reaches v2 as a shadow, whose POST never reaches the ledger; the comparer gets both answers', async (t) => {
  const { nacos, v2, ledger } = await world(t)
  const comparer = new Recorder()
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'orders', version: 'v1', nacos, rules, cacheDir: false, registration: { drainMs: 0 }, shadow: { comparer, timeoutMs: 10_000 } })
  app.get('/items/:id', async (request) => ({ id: (request.params as { id: string }).id, price: 10, lane: request.flow.tag, shadow: request.flow.shadow === true }))
  app.get('/metrics', async () => 'the app\'s own scrape route\n')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const writes = async () => (await (await fetch(`http://127.0.0.1:${ledger.port}/count`)).json() as { writes: number }).writes

  // v2's write is real for a user in v2: the ledger is reachable, so a refusal below is the guard's
  const direct = await (await fetch(`http://127.0.0.1:${v2.port}/items/1`, { headers: { 'x-tester': 'true' } })).json() as Record<string, unknown>
  t.match(direct, { price: 12, lane: 'v2', shadow: false, wrote: 1 })
  t.equal(await writes(), 1)
  // this instance must see v2 before a copy can reach it (else it falls back to stable)
  await waitFor('orders v2 and ledger discovered', async () => (await app.flowtag.discovery.instances('orders')).some((i) => i.metadata.version === 'v2'), 20_000)

  const res = await fetch(`${base}/items/7?x=1`)
  t.equal(res.status, 200)
  t.same(await res.json(), { id: '7', price: 10, lane: 'v1', shadow: false }, 'the user gets v1\'s answer')
  const pair = await waitFor('the pair compared', () => comparer.pairs[0], 20_000)
  t.match(pair, { service: 'orders', route: '/items/:id', method: 'GET', lane: 'v2', primaryLane: 'v1', primary: { status: 200, truncated: false }, mirror: { status: 200, truncated: false } })
  t.same(json(pair.primary.body), { id: '7', price: 10, lane: 'v1', shadow: false })
  t.same(json(pair.mirror.body), { id: '7', price: 12, lane: 'v2', shadow: true, wrote: 'FLOWTAG_SHADOW_WRITE_REFUSED' }, 'v2 ran the copy as a shadow and its POST was refused')
  t.equal(pair.secondary, undefined)
  t.equal(await writes(), 1, 'the shadow never reached the ledger')
  t.match(app.flowtag.mirror.stats, { sent: 1, compared: 1, dropped: 0, failed: 0 })

  // a second answer of the primary's lane, when the comparer asks (learned noise): the copy goes to
  // orders v1 (this process) as a shadow, which is not mirrored again
  comparer.secondary = true
  await fetch(`${base}/items/8`).then((r) => r.arrayBuffer())
  const second = await waitFor('the pair with a secondary', () => comparer.pairs[1], 20_000)
  t.equal(second.secondary?.status, 200)
  t.same(json(second.secondary!.body), { id: '8', price: 10, lane: 'v1', shadow: true })
  t.equal(app.flowtag.tagger.stats.mirrored, 2, 'the shadow copy to v1 was not mirrored again')
  t.equal(await writes(), 1)

  // probes and scrapes are no lane's traffic: drawn like any GET, never copied
  comparer.secondary = false
  for (const path of ['/health', '/metrics', '/items/9']) await fetch(`${base}${path}`).then((r) => r.arrayBuffer())
  await waitFor('the copy of /items/9 compared', () => comparer.pairs[2], 20_000)
  await waitFor('no copy in flight', () => app.flowtag.mirror.inFlight === 0, 20_000)
  t.same(comparer.pairs.map((p) => p.route), ['/items/:id', '/items/:id', '/items/:id'], 'no pair of /health or /metrics')
  t.match(app.flowtag.mirror.stats, { sent: 4, compared: 3 }, 'and no copy of them sent (a secondary counts apart)')
})

t.test('Express: the same mirror, the route path, the answer captured as it was written', async (t) => {
  const { nacos, ledger } = await world(t)
  const comparer = new Recorder()
  const app = express()
  const ft = flowTagService({ service: 'orders', version: 'v1', nacos, rules, cacheDir: false, signals: false, registration: { drainMs: 0 }, shadow: { comparer, timeoutMs: 10_000 } })
  app.use(ft)
  app.get('/items/:id', (req, res) => { res.json({ id: req.params.id, price: 10 }) })
  app.get('/metrics', (_req, res) => { res.type('text/plain').send('the app\'s own scrape route\n') })
  const server = await ft.listen(app, { port: 0, host: '127.0.0.1' })
  t.teardown(() => ft.close())
  await waitFor('orders v2 discovered', async () => (await ft.service.discovery.instances('orders')).some((i) => i.metadata.version === 'v2'), 20_000)
  const res = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/items/3`)
  t.same(await res.json(), { id: '3', price: 10 })
  const pair = await waitFor('the pair compared', () => comparer.pairs[0], 20_000)
  t.match(pair, { route: '/items/:id', method: 'GET', lane: 'v2', primaryLane: 'v1', primary: { status: 200 }, mirror: { status: 200 } })
  t.same(json(pair.primary.body), { id: '3', price: 10 })
  t.match(json(pair.mirror.body), { price: 12, shadow: true, wrote: 'FLOWTAG_SHADOW_WRITE_REFUSED' })
  const writes = (await (await fetch(`http://127.0.0.1:${ledger.port}/count`)).json() as { writes: number }).writes
  t.equal(writes, 0)

  // the app's own scrape route is no lane's traffic: never copied
  for (const path of ['/metrics', '/items/4']) await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}${path}`).then((r) => r.arrayBuffer())
  await waitFor('the copy of /items/4 compared', () => comparer.pairs[1], 20_000)
  await waitFor('no copy in flight', () => ft.service.mirror.inFlight === 0, 20_000)
  t.same(comparer.pairs.map((p) => p.route), ['/items/:id', '/items/:id'], 'no pair of /metrics')
  t.match(ft.service.mirror.stats, { sent: 2, compared: 2 })
})

t.test('a slow or dead mirror lane changes nothing for the user: timeouts and drops are counted', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const nacos = { serverAddr: dev.address, ...fastClient }
  // orders v2 in this process, slow: it answers only when the test is done
  const slow = Fastify()
  await slow.register(fastifyFlowTagService, { service: 'orders', version: 'v2', nacos, rules, cacheDir: false, registration: { drainMs: 0 } })
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  slow.get('/items/:id', async () => { await held; return { price: 12 } })
  await slow.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { release(); await slow.close() })

  const comparer = new Recorder()
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'orders', version: 'v1', nacos, rules, cacheDir: false, registration: { drainMs: 0 }, shadow: { comparer, maxInFlight: 2, timeoutMs: 3000 } })
  app.get('/items/:id', async () => ({ price: 10 }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await waitFor('orders v2 discovered', async () => (await app.flowtag.discovery.instances('orders')).some((i) => i.metadata.version === 'v2'), 20_000)

  // four users at once: their answers come at once, while two copies hang (the cap is two)
  const answers = await Promise.all([0, 1, 2, 3].map(async (i) => { const r = await fetch(`${base}/items/${i}`); return [r.status, await r.json()] }))
  t.same(answers, [0, 1, 2, 3].map(() => [200, { price: 10 }]), 'every user got v1\'s answer')
  const stats = await waitFor('the copies settled', () => { const s = app.flowtag.mirror.stats; return s.timeout + s.dropped === 4 && app.flowtag.mirror.inFlight === 0 ? s : undefined }, 20_000)
  t.ok(stats.dropped >= 1, `dropped when full (${stats.dropped}), never queued`)
  t.ok(stats.timeout >= 1, `timed out (${stats.timeout})`)
  t.equal(comparer.pairs.length, stats.timeout, 'a timed-out copy is compared as status 0')
  t.match(comparer.pairs[0], { mirror: { status: 0, headers: { 'x-flowtag-error': /Abort|Timeout/ } } })
})

t.test('bad shadow options are refused naming the field', async (t) => {
  const nacos = { serverAddr: '127.0.0.1:1' }
  const make = (shadow: unknown) => () => createFlowTagService({ service: 's', nacos, cacheDir: false, registration: false, shadow: shadow as never })
  t.throws(make({ maxInFlight: 0 }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /shadow\.maxInFlight/ })
  t.throws(make({ timeoutMs: -1 }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /shadow\.timeoutMs/ })
  t.throws(make({ comparer: { compare: 1 } }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /shadow\.comparer/ })
  t.throws(make({ nope: true }), { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /shadow/ })
  const ok = createFlowTagService({ service: 's', nacos, cacheDir: false, registration: false, shadow: { comparer: { compare: () => {} } } })
  t.equal(ok.mirror.maxBodyBytes, 1024 * 1024)
  await ok.close()
})
