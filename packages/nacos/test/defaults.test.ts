// Defaults for the Nacos of today: which API a client with no `transport` option picks (gRPC,
// then the HTTP v3 client API, then v1), that a server without an API never produces an error a
// user has to read, the gRPC connection labels, and the namespace a 3.x server's listeners get.
import { waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { NacosClient } from '../src/index.ts'
import { grpcRecordingProxy, type GrpcRecord } from './fixtures/grpc-recording-proxy.ts'
import { recordingProxy } from './fixtures/recording-proxy.ts'
import { flavours, memoryLogger, startDev, targets } from './fixtures/target.ts'

type Teardown = { teardown(fn: () => unknown): void }

/** HTTP and gRPC forwarders in front of a server (gRPC = HTTP port + 1000, as a client dials it); `refuse` answers paths itself. */
async function proxied (t: Teardown, dev: { url: string; port: number; grpcPort: number | undefined }, refuse?: (url: string) => number | undefined) {
  for (let attempt = 0; ; attempt++) {
    const http = await recordingProxy(dev.url, refuse)
    try {
      const grpc = dev.grpcPort === undefined ? undefined : await grpcRecordingProxy(http.port + 1000, dev.grpcPort)
      t.teardown(async () => {
        grpc?.close()
        await http.close()
      })
      return { addr: `127.0.0.1:${http.port}`, http, grpc: grpc?.seen ?? [] }
    } catch (err) {
      // The port 1000 above a random one can be taken: try another.
      await http.close()
      if (attempt > 5) throw err
    }
  }
}

const v3Gone = (url: string): number | undefined => (url.startsWith('/nacos/v3/') ? 404 : undefined)
const sent = (seen: GrpcRecord[], type: string) => seen.filter((r) => r.dir === 'up' && r.msg.type === type).map((r) => r.msg.body)
const loud = (log: ReturnType<typeof memoryLogger>) => log.lines.filter((l) => l.level === 'warn' || l.level === 'error')

t.test('no transport option: gRPC where offered, else HTTP v3, else v1; no warning on the way', async (t) => {
  const cases = [
    { name: 'gRPC offered', dev: {}, refuse: undefined, expect: 'grpc' },
    { name: 'no gRPC (a 1.x or a blocked port)', dev: { grpc: false }, refuse: undefined, expect: 'http-v3' },
    { name: 'no gRPC, no v3 client API (1.x)', dev: { grpc: false }, refuse: v3Gone, expect: 'http-v1' }
  ] as const
  for (const c of cases) {
    const dev = await startDev(c.dev)
    t.teardown(() => dev.close())
    const p = await proxied(t, dev, c.refuse)
    const log = memoryLogger()
    const client = new NacosClient({ serverAddr: p.addr, logger: log })
    t.teardown(() => client.close())
    await client.naming.register('defaults-order', { ip: '127.0.0.1', port: 4700 })
    await client.config.publish('defaults-order', 'G', 'x')
    t.equal(await client.config.get('defaults-order', 'G'), 'x', `${c.name}: works`)
    t.equal(client.server.transport, c.expect, `${c.name}: ${c.expect}`)
    t.same(loud(log), [], `${c.name}: nothing logged above info`)
  }
})

t.test('transport: http keeps its order (v1 first, then v3); http-v3 forced never asks v1', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const p = await proxied(t, dev)
  const http = new NacosClient({ serverAddr: p.addr, transport: 'http' })
  const v3 = new NacosClient({ serverAddr: p.addr, transport: 'http-v3' })
  t.teardown(() => Promise.all([http.close(), v3.close()]))
  await http.ping()
  t.equal(http.server.transport, 'http-v1')
  const before = p.http.seen.length
  await v3.naming.instances('defaults-forced')
  t.equal(v3.server.transport, 'http-v3')
  t.notOk(p.http.seen.slice(before).some((r) => r.url.startsWith('/nacos/v1/')), 'no v1 request')
})

t.test('gRPC connection set-up carries AppName and the app labels as app_<key>', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const p = await proxied(t, dev)
  const labelled = new NacosClient({ serverAddr: p.addr, appName: 'order-service', labels: { version: 'v2', env: 'staging', 'nacos.config.gray.label': 'v2' } })
  t.teardown(() => labelled.close())
  await labelled.naming.instances('defaults-labels')
  await labelled.config.get('defaults-labels', 'G')
  const setups = sent(p.grpc, 'ConnectionSetupRequest')
  t.equal(setups.length, 2, 'a naming and a config connection')
  for (const s of setups) {
    const labels = s.labels as Record<string, string>
    t.match(labels, { AppName: 'order-service', app_version: 'v2', app_env: 'staging', 'app_nacos.config.gray.label': 'v2', source: 'sdk' })
  }
  t.same(setups.map((s) => (s.labels as Record<string, string>).module).sort(), ['config', 'naming'])

  const bare = new NacosClient({ serverAddr: p.addr })
  t.teardown(() => bare.close())
  await bare.naming.instances('defaults-labels')
  const last = sent(p.grpc, 'ConnectionSetupRequest').at(-1)?.labels as Record<string, string>
  t.same(last, { AppName: 'unknown', source: 'sdk', module: 'naming' }, 'no app labels unless given')
})

t.test('labels are validated: a bad key is FLOWTAG_NACOS_BAD_OPTION naming labels', async (t) => {
  t.throws(() => new NacosClient({ serverAddr: '127.0.0.1:8848', labels: { 'a b': 'x' } }), { code: 'FLOWTAG_NACOS_BAD_OPTION', message: /labels/ })
  t.throws(() => new NacosClient({ serverAddr: '127.0.0.1:8848', appName: 'a/b' }), { code: 'FLOWTAG_NACOS_BAD_OPTION', message: /appName/ })
})

// A 3.x server (it has the HTTP v3 client API) names the default namespace `public`; a 3.1.0 can
// push `tenant=null` to listeners walked after a blank-tenant one on the same key, breaking the
// 3.x clients there. On a 2.x server `public` would be another namespace: blank there.
for (const gen of [{ name: '3.x', refuse: undefined, tenant: 'public' }, { name: '2.x', refuse: v3Gone, tenant: '' }] as const) {
  t.test(`${gen.name} server over gRPC: config listens use tenant "${gen.tenant}" for the default namespace; pushes arrive`, async (t) => {
    const dev = await startDev()
    t.teardown(() => dev.close())
    const p = await proxied(t, dev, gen.refuse)
    const listener = new NacosClient({ serverAddr: p.addr })
    const publisher = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}` })
    t.teardown(() => Promise.all([listener.close(), publisher.close()]))
    const seen: Array<string | undefined> = []
    listener.config.listen('defaults-ns', 'G', (c) => seen.push(c))
    await waitFor('a listen sent', () => sent(p.grpc, 'ConfigBatchListenRequest').length > 0, 10_000)
    const contexts = sent(p.grpc, 'ConfigBatchListenRequest').flatMap((b) => b.configListenContexts as Array<{ tenant: string }>)
    t.same([...new Set(contexts.map((c) => c.tenant))], [gen.tenant])
    for (const v of ['a', 'b']) {
      await publisher.config.publish('defaults-ns', 'G', v)
      await waitFor(`listener got ${v}`, () => seen.at(-1) === v, 10_000)
    }
    t.pass('every change reached the listener')
  })
}

// The same against a real Nacos when NACOS_SERVER_ADDR is set (./scripts/test: 2.5.0, 2.5.0 with
// auth, 3.1.0): the default picks gRPC, nothing is logged above info, the set-up's labels are
// accepted, and config listens use the namespace name of the server's generation while every
// change reaches the listener.
for (const target of targets().filter((x) => x.kind === 'real')) {
  t.test('real server: no transport option', async (t) => {
    const server = await target.start()
    const creds = server.username === undefined ? {} : { username: server.username, password: server.password }
    const [host, port] = server.addr.replace(/^https?:\/\//, '').split(':')
    const p = await proxied(t, { url: `http://${host}:${port}`, port: Number(port), grpcPort: Number(port) + 1000 })
    const third = (await flavours('real')).includes('http-v3')
    const log = memoryLogger()
    const listener = new NacosClient({ serverAddr: p.addr, logger: log, appName: 'flowtag-defaults', labels: { version: 'v2' }, ...creds })
    const publisher = new NacosClient({ serverAddr: server.addr, ...creds })
    t.teardown(() => Promise.all([listener.close(), publisher.close()]))
    const dataId = `defaults-real-${Date.now()}`
    const seen: Array<string | undefined> = []
    listener.config.listen(dataId, 'G', (c) => seen.push(c))
    await waitFor('a listen sent', () => sent(p.grpc, 'ConfigBatchListenRequest').length > 0, 15_000)
    t.equal(listener.server.transport, 'grpc')
    const contexts = sent(p.grpc, 'ConfigBatchListenRequest').flatMap((b) => b.configListenContexts as Array<{ tenant: string }>)
    t.same([...new Set(contexts.map((c) => c.tenant))], [third ? 'public' : ''], third ? '3.x: tenant public' : '2.x: blank tenant')
    t.match(sent(p.grpc, 'ConnectionSetupRequest')[0]?.labels, { AppName: 'flowtag-defaults', app_version: 'v2' })
    for (const v of ['a', 'b', 'c']) {
      await publisher.config.publish(dataId, 'G', v)
      await waitFor(`listener got ${v}`, () => seen.at(-1) === v, 20_000)
    }
    await publisher.config.remove(dataId, 'G').catch(() => {})
    t.same(loud(log), [], 'nothing logged above info')
  })
}
