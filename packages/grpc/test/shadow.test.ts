// A shadow flow (a mirrored copy) never writes over gRPC: a call to a method not in `safeMethods`
// ends FAILED_PRECONDITION (x-flowtag-error: FLOWTAG_SHADOW_WRITE_REFUSED) and never reaches the
// server; a safe method's call carries the shadow marker, so the next hop is a shadow too.
import t from 'tap'
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow, type FlowContext } from '@flowtag/context'
import { FlowTagGrpc, grpcOptionsSchema, shadowCallCounts } from '../src/index.ts'
import { EchoClient, EchoService, echo, startEcho } from './fixtures/echo.ts'

const quiet = { warn: () => {}, info: () => {} }
const shadow: FlowContext = { tag: 'v3', shadow: true, baggage: {} }

async function refused (p: Promise<unknown>): Promise<[number, string | undefined]> {
  try {
    await p
    return [-1, undefined]
  } catch (err) {
    const e = err as ServiceError
    return [e.code, String(e.metadata?.get('x-flowtag-error')[0])]
  }
}

t.test('nacos:/// clients: refused unless safe; a safe call carries the marker', async (t) => {
  const server = await startEcho('one')
  t.teardown(() => server.close())
  const discovery = new StaticDiscovery({ echo: [{ ip: '127.0.0.1', port: server.port, metadata: { version: 'v3' } }] })
  const strictLanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet })
  const strictClient = new EchoClient('nacos:///echo', credentials.createInsecure(), strictLanes.clientOptions())
  t.teardown(() => { strictClient.close(); strictLanes.close() })
  const before = shadowCallCounts.refused
  t.same(await refused(runWithFlow(shadow, () => echo(strictClient))), [status.FAILED_PRECONDITION, 'FLOWTAG_SHADOW_WRITE_REFUSED'])
  t.equal(server.calls, 0, 'the server never saw it')
  t.equal(shadowCallCounts.refused - before, 1)
  t.match(await runWithFlow({ tag: 'v3', baggage: {} }, () => echo(strictClient)), { id: 'one', tag: 'v3' }, 'outside a shadow it is sent')
  t.equal(server.calls, 1)

  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet, safeMethods: [EchoService.echo!] })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  const reply = await runWithFlow(shadow, () => echo(client))
  t.match(reply, { id: 'one', tag: 'v3', shadow: true }, 'the next hop runs in a shadow flow')
  t.same(reply.baggage, {}, 'the marker is not an ordinary baggage entry')
  // copied metadata cannot make a plain call a shadow
  const md = new Metadata()
  md.set('x-flow-shadow', '1')
  const plain = await runWithFlow({ tag: 'v3', baggage: {} }, () => echo(client, md))
  t.equal(plain.shadow, undefined)
})

t.test('fixed-address clients: the interceptor refuses the same way', async (t) => {
  const server = await startEcho('fixed')
  t.teardown(() => server.close())
  const lanes = new FlowTagGrpc({ discovery: new StaticDiscovery({}), logger: quiet })
  const client = new EchoClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), { interceptors: [lanes.interceptor] })
  t.teardown(() => { client.close(); lanes.close() })
  t.same(await refused(runWithFlow(shadow, () => echo(client))), [status.FAILED_PRECONDITION, 'FLOWTAG_SHADOW_WRITE_REFUSED'])
  t.equal(server.calls, 0)
  const safe = new FlowTagGrpc({ discovery: new StaticDiscovery({}), logger: quiet, safeMethods: [EchoService.echo!] })
  const client2 = new EchoClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), { interceptors: [safe.interceptor] })
  t.teardown(() => { client2.close(); safe.close() })
  t.match(await runWithFlow(shadow, () => echo(client2)), { id: 'fixed', shadow: true })
})

t.test('safeMethods must be method definitions', async (t) => {
  const r = grpcOptionsSchema.safeParse({ discovery: new StaticDiscovery({}), safeMethods: [{ path: 'nope' }] })
  t.notOk(r.success)
  t.throws(() => new FlowTagGrpc({ discovery: new StaticDiscovery({}), safeMethods: [undefined as never] }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /safeMethods\.0/ })
})
