// A shadow flow (a mirrored copy) never writes: through the FlowTagDispatcher (services) and the
// global fetch router (any host) a method that may write is refused with a coded error, or sent to
// the configured sink. Real servers on loopback count what reached them.
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fetch, getGlobalDispatcher, setGlobalDispatcher } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow, shadowCopyFlow, type FlowContext } from '@flowtag/context'
import { FlowTagDispatcher, installGlobalDispatcher, shadowWriteCounts } from '../src/index.ts'

interface Seen { method: string, path: string, headers: IncomingMessage['headers'], body: string }

/** A loopback HTTP server that records every request it gets. */
async function recorder (t: Test): Promise<{ port: number, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push({ method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() })
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ ok: true }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.address() as AddressInfo).port, seen }
}

const shadow: FlowContext = { tag: 'v3', shadow: true, baggage: {} }
const plain: FlowContext = { tag: 'v3', baggage: {} }

/** The code of a fetch failure's cause (undici wraps dispatcher errors in TypeError: fetch failed). */
async function failure (p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (err) {
    return ((err as Error).cause as { code?: string } | undefined)?.code ?? (err as { code?: string }).code
  }
}

t.test('dispatcher: a shadow reads but never writes; PUT/DELETE only when declared', async (t) => {
  const store = await recorder(t)
  const discovery = new StaticDiscovery({ store: [{ ip: '127.0.0.1', port: store.port, metadata: { version: 'v3' } }] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => dispatcher.close())
  const before = shadowWriteCounts.refused
  const get = await runWithFlow(shadow, () => fetch('http://store/items', { dispatcher }))
  t.equal(get.status, 200)
  await get.arrayBuffer()
  t.equal(store.seen.at(-1)?.headers['x-flow-shadow'], '1', 'the marker travels with the read')
  t.match(store.seen.at(-1)?.headers.baggage, /flowtag\.shadow=1/)
  for (const method of ['POST', 'PATCH', 'PUT', 'DELETE', 'post']) {
    t.equal(await failure(runWithFlow(shadow, () => fetch('http://store/items', { dispatcher, method, body: method === 'POST' ? '{}' : undefined }))), 'FLOWTAG_SHADOW_WRITE_REFUSED', method)
  }
  t.same(store.seen.map((s) => s.method), ['GET'], 'no write reached the store')
  t.equal(shadowWriteCounts.refused - before, 5, 'counted')
  const write = await runWithFlow(plain, () => fetch('http://store/items', { dispatcher, method: 'POST', body: '{}' }))
  t.equal(write.status, 200, 'outside a shadow the same POST goes through')
  await write.arrayBuffer()

  // a mirror's own copy (shadowCopyFlow) is what makes the shadow: sent whatever its method
  const copy = await runWithFlow(shadowCopyFlow('v3'), () => fetch('http://store/items', { dispatcher, method: 'POST', body: '{}' }))
  t.equal(copy.status, 200, 'the mirror\'s own copy is sent')
  await copy.arrayBuffer()
  t.equal(store.seen.at(-1)?.headers['x-flow-shadow'], '1', 'as a shadow')

  const lenient = new FlowTagDispatcher({ discovery, stableLane: 'v1', shadow: { allowMethods: ['PUT'] } })
  t.teardown(() => lenient.close())
  const put = await runWithFlow(shadow, () => fetch('http://store/items/1', { dispatcher: lenient, method: 'PUT', body: 'x' }))
  t.equal(put.status, 200, 'a declared PUT is sent')
  await put.arrayBuffer()
  t.equal(await failure(runWithFlow(shadow, () => fetch('http://store/items/1', { dispatcher: lenient, method: 'DELETE' }))), 'FLOWTAG_SHADOW_WRITE_REFUSED')
})

t.test('dispatcher: with a sink, a shadow\'s write goes there instead, saying where it was going', async (t) => {
  const store = await recorder(t)
  const sink = await recorder(t)
  const discovery = new StaticDiscovery({ store: [{ ip: '127.0.0.1', port: store.port, metadata: { version: 'v1' } }] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1', shadow: { sink: `http://127.0.0.1:${sink.port}` } })
  t.teardown(() => dispatcher.close())
  const res = await runWithFlow(shadow, () => fetch('http://store/orders?x=1', { dispatcher, method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } }))
  t.equal(res.status, 200)
  await res.arrayBuffer()
  t.equal(store.seen.length, 0, 'the store saw nothing')
  t.match(sink.seen, [{ method: 'POST', path: '/orders?x=1', body: '{"a":1}', headers: { 'x-flowtag-shadow-origin': 'http://store', 'content-type': 'application/json' } }])
})

t.test('global fetch: a shadow\'s write to any host (not only services) is refused', async (t) => {
  const original = getGlobalDispatcher()
  const legacy = Symbol.for('undici.globalDispatcher.1')
  const originalLegacy = (globalThis as Record<symbol, unknown>)[legacy]
  t.teardown(() => {
    setGlobalDispatcher(original)
    ;(globalThis as Record<symbol, unknown>)[legacy] = originalLegacy
  })
  const partner = await recorder(t)
  const dispatcher = new FlowTagDispatcher({ discovery: new StaticDiscovery({}), stableLane: 'v1' })
  t.teardown(() => dispatcher.close())
  installGlobalDispatcher(dispatcher, { services: [] })
  const url = `http://127.0.0.1:${partner.port}/charge`
  t.equal(await failure(runWithFlow(shadow, () => globalThis.fetch(url, { method: 'POST', body: '{}' }))), 'FLOWTAG_SHADOW_WRITE_REFUSED')
  t.equal(partner.seen.length, 0, 'the partner saw nothing')
  const read = await runWithFlow(shadow, () => globalThis.fetch(url))
  t.equal(read.status, 200)
  await read.arrayBuffer()
  const write = await runWithFlow(plain, () => globalThis.fetch(url, { method: 'POST', body: '{}' }))
  t.equal(write.status, 200)
  await write.arrayBuffer()
  t.same(partner.seen.map((s) => s.method), ['GET', 'POST'])
})

t.test('the flow, not a copied header, says whether a call is a shadow', async (t) => {
  const { outboundHeaders } = await import('../src/flow-headers.ts')
  const copied = { 'X-Flow-Shadow': '1', baggage: 'flowtag.shadow=1,k=v' }
  t.same(outboundHeaders(copied, plain, 'svc'), { baggage: 'k=v,flowtag.lane=v3', host: 'svc', 'x-flow-tag': 'v3' }, 'a forwarded marker is dropped outside a shadow')
  t.same(outboundHeaders({ 'x-flow-shadow': '1' }, { tag: 'v3', baggage: {} }, 'svc'), { host: 'svc', 'x-flow-tag': 'v3', baggage: 'flowtag.lane=v3' }, 'the fast path too')
  t.match(outboundHeaders({}, shadow, 'svc'), { 'x-flow-shadow': '1', baggage: 'flowtag.lane=v3,flowtag.shadow=1' })
})

t.test('bad shadow options are refused naming the field', async (t) => {
  const discovery = new StaticDiscovery({})
  t.throws(() => new FlowTagDispatcher({ discovery, shadow: { allowMethods: ['POST' as 'PUT'] } }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /shadow\.allowMethods/ })
  t.throws(() => new FlowTagDispatcher({ discovery, shadow: { sink: 'http://127.0.0.1:1/path' } }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /shadow\.sink/ })
  t.throws(() => new FlowTagDispatcher({ discovery, shadow: { sink: 'ftp://x' } }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /shadow\.sink/ })
  t.throws(() => new FlowTagDispatcher({ discovery, shadow: { nope: 1 } as never }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /shadow/ })
})
