// The shared lane-routing schema and the one signing shape: `signing` signs the hop on the wire,
// the deprecated `signTag` still works (one DeprecationWarning), both at once is a coded error.
import { once } from 'node:events'
import { createServer } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow, verifySignedTag } from '@flowtag/context'
import { FlowTagDispatcher, outboundOptionsSchema } from '../src/index.ts'
import { laneRoutingSchema } from '../src/lanes-entry.ts'

const quiet = { warn: () => {}, info: () => {} }
const signing = { keys: [{ id: 'k1', secret: 'a-secret-of-32-characters-length' }], ttlSeconds: 60 }

/** One upstream that answers with the x-flow-tag it received. */
async function upstream (t: Test) {
  const server = createServer((req, res) => res.end(JSON.stringify({ tag: req.headers['x-flow-tag'] ?? null })))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const port = (server.address() as { port: number }).port
  return new StaticDiscovery({ svc: [{ ip: '127.0.0.1', port, metadata: { version: 'v2' } }] })
}

async function tagSeen (dispatcher: FlowTagDispatcher): Promise<string | null> {
  const res = await runWithFlow({ tag: 'v2', baggage: {} }, () => request('http://svc/', { dispatcher }))
  return ((await res.body.json()) as { tag: string | null }).tag
}

t.test('every transport\'s schema extends the shared lane routing', async (t) => {
  for (const key of Object.keys(laneRoutingSchema.shape)) t.ok(key in outboundOptionsSchema.shape, `outbound has ${key}`)
  t.same(Object.keys(laneRoutingSchema.shape).sort(), ['discovery', 'labelKey', 'lanes', 'signing', 'stableLane', 'strict'])
})

t.test('signing: the hop carries a tag signed with the first key', async (t) => {
  const discovery = await upstream(t)
  const dispatcher = new FlowTagDispatcher({ discovery, signing, logger: quiet })
  t.teardown(() => dispatcher.close())
  const tag = await tagSeen(dispatcher)
  t.match(verifySignedTag(tag, new Map([['k1', signing.keys[0]!.secret]])), { lane: 'v2', keyId: 'k1' })
})

t.test('signTag (deprecated) still signs, with one DeprecationWarning per process', async (t) => {
  const discovery = await upstream(t)
  const warnings: Error[] = []
  const onWarning = (w: Error) => { if ((w as { code?: string }).code === 'FLOWTAG_DEP_SIGNTAG') warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const a = new FlowTagDispatcher({ discovery, signTag: (lane) => `${lane}~custom`, logger: quiet })
  const b = new FlowTagDispatcher({ discovery, signTag: (lane) => `${lane}~custom`, logger: quiet })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  t.equal(await tagSeen(a), 'v2~custom', 'the function\'s answer, as before')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(warnings.length, 1, 'warned once')
  t.match(warnings[0], { name: 'DeprecationWarning', message: /"signTag" is deprecated; use signing/ })
})

t.test('bad signing options are coded errors naming the field', async (t) => {
  const discovery = new StaticDiscovery()
  const cases: Array<[object, string]> = [
    [{ signing: { keys: [] } }, 'signing.keys'],
    [{ signing: { keys: [{ id: 'k1', secret: 'short' }] } }, 'signing.keys.0.secret'],
    [{ signing: { keys: [{ id: 'bad id!', secret: signing.keys[0]!.secret }] } }, 'signing.keys.0.id'],
    [{ signing: { ...signing, ttlSeconds: 5 } }, 'signing.ttlSeconds'],
    [{ signing, signTag: (l: string) => l }, 'signTag']
  ]
  for (const [opts, field] of cases) {
    t.throws(() => new FlowTagDispatcher({ discovery, ...opts } as never), { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', field }, field)
  }
})
