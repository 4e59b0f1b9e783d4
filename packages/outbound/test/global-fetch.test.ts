// Node's own global fetch() made lane-aware by installGlobalDispatcher(): service names go
// through the FlowTagDispatcher in the request's flow; IP literals and non-service host names
// go to the previous global dispatcher untouched; uninstall() puts everything back.
// Runs on any Node the package supports: `node test/global-fetch.test.ts` works too.
import t, { type Test } from 'tap'
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import Fastify from 'fastify'
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici'
import { StaticDiscovery, type Instance as NacosInstance } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagDispatcher, installGlobalDispatcher } from '../src/index.ts'
import { startInstance, type Instance } from './fixtures/instances.ts'

const kLegacy = Symbol.for('undici.globalDispatcher.1')
const legacySlot = () => (globalThis as Record<symbol, unknown>)[kLegacy]
const at = (i: Instance, version: string) => ({ ip: '127.0.0.1', port: i.port, metadata: { version } })

/** A StaticDiscovery that counts instances() calls per service. */
class CountingDiscovery extends StaticDiscovery {
  readonly asked = new Map<string, number>()
  override instances (service: string): Promise<NacosInstance[]> {
    this.asked.set(service, (this.asked.get(service) ?? 0) + 1)
    return super.instances(service)
  }
}

/** The "previous" global dispatcher: resolves every *.example name to loopback, like a DNS would. */
function previousAgent (): Agent {
  return new Agent({
    connect: {
      lookup: (host: string, opts: object, cb: (err: Error | null, addr: LookupAddress[] | string, family?: number) => void) => {
        if (host.endsWith('.example') || host.endsWith('-service')) return cb(null, [{ address: '127.0.0.1', family: 4 }])
        dnsLookup(host, { ...opts, all: true }, cb as never)
      }
    } as never
  })
}

/** Restores the process's own global dispatcher (both slots) after a test. */
function keepGlobal (t: Test) {
  const original = getGlobalDispatcher()
  const originalLegacy = legacySlot()
  t.teardown(() => {
    setGlobalDispatcher(original)
    ;(globalThis as Record<symbol, unknown>)[kLegacy] = originalLegacy
  })
}

t.test('global fetch inside a Fastify request: services by lane, other hosts untouched, uninstall restores', async (t) => {
  keepGlobal(t)
  const [v1, v2, outsider] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2'), startInstance(t, 'outsider')])
  const discovery = new CountingDiscovery({ 'user-service': [at(v1, 'v1'), at(v2, 'v2')], 'empty-service': [] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => dispatcher.close())
  const previous = previousAgent()
  t.teardown(() => previous.close())
  setGlobalDispatcher(previous)
  const previousLegacy = legacySlot()

  const installation = installGlobalDispatcher(dispatcher)
  t.equal(installation.previous, previous)
  t.equal(getGlobalDispatcher(), installation.dispatcher)
  t.not(legacySlot(), previousLegacy, "Node's bundled fetch reads the legacy slot: it changed too")

  const app = Fastify()
  t.teardown(() => app.close())
  app.addHook('onRequest', (req, _reply, done) => runWithFlow({ tag: req.headers['x-flow-tag'] as string | undefined, baggage: {} }, done))
  app.get('/x', async () => {
    // globalThis.fetch: Node's built-in fetch, no dispatcher passed.
    const get = async (url: string) => (await globalThis.fetch(url)).json()
    return {
      service: await get('http://user-service/users/1'),
      ip: await get(`http://127.0.0.1:${outsider.port}/ip`),
      named: await get(`http://partner.example:${outsider.port}/named`),
      empty: await get(`http://empty-service:${outsider.port}/empty`),
      local: await get(`http://localhost:${outsider.port}/local`)
    }
  })

  const tagged = (await app.inject({ url: '/x', headers: { 'x-flow-tag': 'v2' } })).json()
  t.match(tagged.service, { id: 'two', tag: 'v2', baggage: /flowtag\.lane=v2/, host: 'user-service', path: '/users/1' })
  for (const k of ['ip', 'named', 'empty', 'local']) {
    t.match(tagged[k], { id: 'outsider', tag: null, baggage: null }, `${k}: passed through with no flow headers`)
  }
  t.equal(tagged.ip.host, `127.0.0.1:${outsider.port}`)
  t.equal(tagged.named.host, `partner.example:${outsider.port}`)

  const untagged = (await app.inject({ url: '/x' })).json()
  t.match(untagged.service, { id: 'one', tag: null })

  // One lookup per host name, cached; IP literals and localhost never asked.
  t.equal(discovery.asked.get('user-service'), 1 + 1, 'one by the router, one by the dispatcher')
  t.equal(discovery.asked.get('partner.example'), 1)
  t.equal(discovery.asked.get('empty-service'), 1)
  t.notOk(discovery.asked.has('127.0.0.1'))
  t.notOk(discovery.asked.has('localhost'))
  t.equal(await installation.dispatcher.isService('user-service'), true)
  t.equal(await installation.dispatcher.isService('partner.example'), false)

  t.equal(installation.uninstall(), true)
  t.equal(getGlobalDispatcher(), previous)
  t.equal(legacySlot(), previousLegacy, 'the legacy slot holds the very object it held before')
  t.equal(installation.uninstall(), true, 'idempotent')
  // Now a service name is just a host name again: the previous dispatcher, no lane, no headers.
  const after = await runWithFlow({ tag: 'v2', baggage: {} }, async () => (await globalThis.fetch(`http://user-service:${v1.port}/after`)).json())
  t.match(after, { id: 'one', tag: null, baggage: null })
})

t.test('a fixed services list, negative answers expire, uninstall in the wrong order', async (t) => {
  keepGlobal(t)
  const [v1, outsider] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'outsider')])
  const discovery = new CountingDiscovery({ 'user-service': [at(v1, 'v1')] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => dispatcher.close())
  const previous = previousAgent()
  t.teardown(() => previous.close())
  setGlobalDispatcher(previous)

  const fixed = installGlobalDispatcher(dispatcher, { services: ['user-service'] })
  const r = await runWithFlow({ tag: 'v1', baggage: {} }, async () => (await globalThis.fetch('http://user-service/a')).json())
  t.match(r, { id: 'one', tag: 'v1' })
  t.equal(discovery.asked.get('user-service'), 1, 'only the dispatcher asked: the list decides')
  t.equal(await fixed.dispatcher.isService('other.example'), false)
  t.notOk(discovery.asked.has('other.example'))

  // Stacked: undone in reverse order only.
  const top = installGlobalDispatcher(dispatcher, { negativeTtlMs: 2000 })
  t.equal(top.previous, fixed.dispatcher)
  t.equal(fixed.uninstall(), false, 'not the global dispatcher any more: nothing changed')
  t.equal(getGlobalDispatcher(), top.dispatcher)

  // A name with no instance passes through until its negative answer expires (2 s: two requests
  // fit in it even on a loaded CI machine).
  const late = () => runWithFlow({ tag: 'v1', baggage: {} }, async () => (await globalThis.fetch(`http://late-service:${outsider.port}/late`)).json())
  t.match(await late(), { id: 'outsider', tag: null })
  discovery.set('late-service', [at(v1, 'v1')])
  t.match(await late(), { id: 'outsider', tag: null }, 'still cached as not a service')
  await new Promise((r) => setTimeout(r, 2100))
  t.match(await late(), { id: 'one', tag: 'v1', host: `late-service:${outsider.port}` }, 'asked again after negativeTtlMs: now a service')

  t.equal(top.uninstall(), true)
  t.equal(fixed.uninstall(), true)
  t.equal(getGlobalDispatcher(), previous)
})

t.test('a composed dispatcher with a discovery given; the router owns no connections', async (t) => {
  keepGlobal(t)
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const discovery = new CountingDiscovery({ 'user-service': [at(v1, 'v1'), at(v2, 'v2')] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => dispatcher.close())
  const composed = dispatcher.compose((dispatch) => dispatch) // an interceptor chain over it
  t.throws(() => installGlobalDispatcher(composed, { discovery: {} as never }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /"discovery": expected a Discovery/ })
  const installation = installGlobalDispatcher(composed, { discovery })
  t.teardown(() => installation.uninstall())
  const call = () => runWithFlow({ tag: 'v2', baggage: {} }, async () => (await globalThis.fetch('http://user-service/a')).json())
  t.match(await call(), { id: 'two', tag: 'v2' }, 'the given discovery tells services apart')
  t.equal(discovery.asked.get('user-service'), 2, 'asked once by the router, once by the dispatcher')

  // Someone closes or destroys the global dispatcher (a library's shutdown): the router owns no
  // connections, so the FlowTagDispatcher and the previous dispatcher go on serving.
  const router = installation.dispatcher
  await router.close()
  await new Promise<void>((resolve) => { router.close(resolve) })
  await router.destroy()
  await router.destroy(null)
  await new Promise<void>((resolve) => { router.destroy(resolve) })
  await new Promise<void>((resolve) => { router.destroy(new Error('shutting down'), resolve) })
  t.match(await call(), { id: 'two', tag: 'v2' }, 'still serving after close and destroy')
})

t.test('bad options are coded errors', async (t) => {
  keepGlobal(t)
  const dispatcher = new FlowTagDispatcher({ discovery: new StaticDiscovery() })
  t.teardown(() => dispatcher.close())
  const before = getGlobalDispatcher()
  t.throws(() => installGlobalDispatcher({} as never), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /"dispatcher"/ })
  t.throws(() => installGlobalDispatcher(dispatcher, { negativeTtlMs: -1 }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /"negativeTtlMs"/ })
  t.throws(() => installGlobalDispatcher(dispatcher, { services: 'user-service' as never }), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /"services"/ })
  t.throws(() => installGlobalDispatcher(dispatcher, { ttl: 1 } as never), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /"ttl"/ })
  const agent = new Agent()
  t.teardown(() => agent.close())
  t.throws(() => installGlobalDispatcher(agent), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', message: /"discovery"/ })
  t.equal(getGlobalDispatcher(), before, 'nothing installed')
})
