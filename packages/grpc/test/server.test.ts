// The gRPC server in Nacos (dev server): registration with protocol=grpc once bound, the
// grpc.health.v1 service, resolution through the real naming client, and close() that
// deregisters before it stops; plus the service-mode trust policy and signed tags.
import t from 'tap'
import { credentials, loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { protoPath } from 'grpc-health-check'
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { waitFor } from '@flowtag/test-kit'
import { runWithFlow } from '@flowtag/context'
import { FlowTagGrpc } from '../src/index.ts'
import { EchoClient, echo, startEcho } from './fixtures/echo.ts'

const quiet = { warn: () => {}, info: () => {} }

t.test('registers with protocol=grpc, serves health, resolves through Nacos, deregisters on close', async (t) => {
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', push: { delayMs: 20 } })
  t.teardown(() => dev.close())
  const nacos = new NacosClient({ serverAddr: dev.address, namingPollIntervalMs: 100 })
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false, namingPollIntervalMs: 100 })
  t.teardown(() => Promise.all([nacos.close(), admin.close()]))

  const v1 = await startEcho('v1', { nacos, registration: { service: 'echo', version: 'v1' } })
  const v2 = await startEcho('v2', { nacos, registration: { service: 'echo', version: 'v2', drainMs: 200 } })
  t.teardown(() => Promise.all([v1.close(), v2.close()]))
  await waitFor('both registered', async () => (await admin.naming.instances('echo')).length === 2)
  const list = await admin.naming.instances('echo')
  t.same(list.map((i) => i.metadata.protocol), ['grpc', 'grpc'])
  t.same(new Set(list.map((i) => i.metadata.version)), new Set(['v1', 'v2']))

  // grpc.health.v1 as a Kubernetes gRPC probe asks it.
  const health = (loadPackageDefinition(loadSync(protoPath, { enums: String })) as { grpc: { health: { v1: GrpcObject } } }).grpc.health.v1
  const Health = health.Health as unknown as new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => {
    check(req: object, cb: (err: Error | null, res: { status: string }) => void): void
    close(): void
  }
  const probe = new Health(`127.0.0.1:${v2.port}`, credentials.createInsecure())
  t.teardown(() => probe.close())
  const check = () => new Promise<string>((resolve, reject) => probe.check({ service: '' }, (err, res) => (err === null ? resolve(res.status) : reject(err))))
  t.equal(await check(), 'SERVING')

  const lanes = new FlowTagGrpc({ discovery: admin.naming, stableLane: 'v1', logger: quiet })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client)), { id: 'v2', tag: 'v2' })

  const closing = v2.close()
  await waitFor('NOT_SERVING while draining', async () => (await check()) === 'NOT_SERVING')
  await waitFor('v2 deregistered', async () => (await admin.naming.instances('echo')).length === 1)
  await closing
  await waitFor('the picker saw v2 leave', async () => (await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client))).id === 'v1')
  t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client)), { id: 'v1', tag: 'v2' }, 'v2 gone: stable serves, the lane travels on')
})

t.test('incoming tags: trust policy of the service mode, signed tags', async (t) => {
  const key = { id: 'k1', secret: 'a-secret-of-at-least-32-characters!!' }
  const signedOnly = await startEcho('signed', { flow: { trust: { signed: { keys: [key] } } } })
  const never = await startEcho('never', { flow: { trust: 'never' } })
  t.teardown(() => Promise.all([signedOnly.close(), never.close()]))
  const { StaticDiscovery } = await import('@flowtag/nacos')
  const discovery = new StaticDiscovery({
    signed: [{ ip: '127.0.0.1', port: signedOnly.port }],
    never: [{ ip: '127.0.0.1', port: never.port }]
  })
  const plain = new FlowTagGrpc({ discovery, logger: quiet })
  const signing = new FlowTagGrpc({ discovery, logger: quiet, sign: { key } })
  const clients = {
    plainToSigned: new EchoClient('nacos:///signed', credentials.createInsecure(), plain.clientOptions()),
    signedToSigned: new EchoClient('nacos:///signed', credentials.createInsecure(), signing.clientOptions()),
    plainToNever: new EchoClient('nacos:///never', credentials.createInsecure(), plain.clientOptions())
  }
  t.teardown(() => { for (const c of Object.values(clients)) c.close(); plain.close(); signing.close() })
  const inV2 = <T>(fn: () => Promise<T>) => runWithFlow({ tag: 'v2', baggage: {} }, fn)
  t.match(await inV2(() => echo(clients.plainToSigned)), { tag: undefined }, 'an unsigned tag is not trusted where tags must be signed')
  t.match(await inV2(() => echo(clients.signedToSigned)), { tag: 'v2' }, 'a signed tag is')
  t.match(await inV2(() => echo(clients.plainToNever)), { tag: undefined }, 'trust: never ignores incoming tags')
})

t.test('one signing shape: the client\'s signing and the server\'s trust.signed take the same object; sign is a deprecated alias', async (t) => {
  const signing = { keys: [{ id: 'k1', secret: 'a-secret-of-at-least-32-characters!!' }], ttlSeconds: 60 }
  const signedOnly = await startEcho('signed', { flow: { trust: { signed: signing } } })
  t.teardown(() => signedOnly.close())
  const { StaticDiscovery } = await import('@flowtag/nacos')
  const discovery = new StaticDiscovery({ signed: [{ ip: '127.0.0.1', port: signedOnly.port }] })
  const lanes = new FlowTagGrpc({ discovery, logger: quiet, signing })
  const client = new EchoClient('nacos:///signed', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client)), { tag: 'v2' }, 'signed with signing.keys[0], honoured')

  const cases: Array<[object, string]> = [
    [{ signing, sign: { key: signing.keys[0] } }, 'sign'],
    [{ signing: { keys: [{ id: 'k1', secret: 'short' }] } }, 'signing.keys.0.secret'],
    [{ signing: { ...signing, ttlSeconds: 1 } }, 'signing.ttlSeconds'],
    [{ outlier: { baseEjectionMs: 1000, maxEjectionMs: 10 } }, 'outlier.maxEjectionMs']
  ]
  for (const [opts, field] of cases) t.throws(() => new FlowTagGrpc({ discovery, ...opts } as never), { code: 'FLOWTAG_GRPC_BAD_OPTION', field }, field)
  const old = new FlowTagGrpc({ discovery, logger: quiet, sign: { key: signing.keys[0]!, ttlSeconds: 1 } })
  t.teardown(() => old.close())
  t.pass('the deprecated sign keeps its own range (ttlSeconds from 1)')
})

t.test('server options are validated', async (t) => {
  const { FlowTagGrpcServer } = await import('../src/server-entry.ts')
  t.throws(() => new FlowTagGrpcServer({ registration: { service: 'x' } }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"nacos"/ })
  t.throws(() => new FlowTagGrpcServer({ shutdownTimeoutMs: -1 }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"shutdownTimeoutMs"/ })
  t.throws(() => new FlowTagGrpcServer({ flow: { trust: 'sometimes' } as never }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"flow"/ })
  const app = new FlowTagGrpcServer()
  await t.rejects(app.listen('256.1.1.1:1'), { code: 'FLOWTAG_GRPC_BIND_FAILED' })
})
