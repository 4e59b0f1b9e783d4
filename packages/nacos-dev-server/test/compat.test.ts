// `compat`: the dev server as a Nacos of each generation, as a client sees it.
import { createServer } from 'node:net'
import t from 'tap'
import { waitFor } from '@flowtag/test-kit'
import { COMPAT_MODES } from '../src/options.ts'
import { startNacosDevServer } from '../src/index.ts'
import { peer } from './fixtures/grpc-peer.ts'
import { start } from './fixtures/nacos.ts'

const noAuth = { auth: false } as const

for (const compat of COMPAT_MODES.filter((m) => m !== '2.5')) {
  t.test(`${compat}: a config push carries the namespace id each connection listened with`, async (t) => {
    const { server } = await start(t, { compat, ...noAuth })
    // A 3.x Java client listens in 'public', a 2.x one (and flowtag's) in '': one namespace.
    // Two TCP connections: grpc-js would share one between clients of the same target.
    const v3 = peer(t, server.grpcPort!, { 'grpc.use_local_subchannel_pool': 1 })
    const v2 = peer(t, server.grpcPort!, { 'grpc.use_local_subchannel_pool': 1 })
    await v3.connect()
    await v2.connect()
    const listen = (tenant: string, md5 = '') => ({ listen: true, configListenContexts: [{ dataId: 'rules.json', group: 'FLOWTAG', tenant, md5 }] })
    t.match(await v3.request('ConfigBatchListenRequest', listen('public')), { body: { success: true, changedConfigs: [] } })
    t.match(await v2.request('ConfigBatchListenRequest', listen('')), { body: { success: true, changedConfigs: [] } })
    t.match(await v2.request('ConfigPublishRequest', { dataId: 'rules.json', group: 'FLOWTAG', tenant: '', content: 'v1' }), { body: { success: true } })
    const pushOf = (p: typeof v3) => waitFor('a ConfigChangeNotifyRequest', () => p.pushes.find((m) => m.type === 'ConfigChangeNotifyRequest'), 5000)
    t.match((await pushOf(v3)).body, { dataId: 'rules.json', group: 'FLOWTAG', tenant: 'public' }, 'the public listener hears tenant=public')
    t.match((await pushOf(v2)).body, { dataId: 'rules.json', group: 'FLOWTAG', tenant: '' }, 'the blank listener hears tenant=')
    // A stale md5 is answered at once, again in the listener's own terms.
    t.match(await v3.request('ConfigBatchListenRequest', listen('public', 'stale')), { body: { changedConfigs: [{ dataId: 'rules.json', group: 'FLOWTAG', tenant: 'public' }] } })
    // Blank and 'public' read the same config.
    t.match(await v3.request('ConfigQueryRequest', { dataId: 'rules.json', group: 'FLOWTAG', tenant: 'public' }), { body: { content: 'v1' } })
  })
}

t.test("2.5: 'public' is a config namespace of its own (as on a real 2.5.0); pushes echo it", async (t) => {
  const { server, call } = await start(t, { compat: '2.5' })
  const c = peer(t, server.grpcPort!)
  await c.connect()
  const key = { dataId: 'rules.json', group: 'FLOWTAG' }
  t.match(await c.request('ConfigBatchListenRequest', { listen: true, configListenContexts: [{ ...key, tenant: 'public', md5: '' }] }), { body: { changedConfigs: [] } })
  t.equal((await call('POST', '/v1/cs/configs', { ...key, group: key.group, content: 'blank' })).text, 'true')
  t.equal((await call('GET', '/v1/cs/configs', { ...key, tenant: 'public' })).status, 404, 'the blank config is not under tenant=public')
  t.match(await c.request('ConfigQueryRequest', { ...key, tenant: 'public' }), { body: { success: false, errorCode: 300 } })
  t.match(await c.request('ConfigPublishRequest', { ...key, tenant: 'public', content: 'in-public' }), { body: { success: true } })
  const push = await waitFor('a ConfigChangeNotifyRequest', () => c.pushes.find((m) => m.type === 'ConfigChangeNotifyRequest'), 5000)
  t.match(push.body, { ...key, tenant: 'public' })
  t.equal(c.pushes.filter((m) => m.type === 'ConfigChangeNotifyRequest').length, 1, 'the blank publish pushed nothing to the public listener')
  t.equal((await call('GET', '/v1/cs/configs', key)).text, 'blank')
  const poll = await call('POST', '/v1/cs/configs/listener', { 'Listening-Configs': 'rules.json\u0002FLOWTAG\u0002\u0002public\u0001' }, { headers: { 'long-pulling-timeout-no-hangup': 'true' } })
  t.equal(decodeURIComponent(poll.text.trim()), 'rules.json\u0002FLOWTAG\u0002public\u0001', 'the long poll reads tenant=public apart too')
})

t.test('the default is 3.1: v1, the v3 client API and gRPC, auth off', async (t) => {
  const { server, call } = await start(t)
  t.equal(server.compat, '3.1')
  t.equal(server.auth, undefined)
  t.equal((await call('GET', '/v1/ns/instance/list', { serviceName: 's' })).status, 200)
  t.equal((await call('GET', '/v3/client/ns/instance/list', { serviceName: 's' })).status, 200)
  t.equal((await call('GET', '/v1/ns/nope')).status, 501, 'unknown v1 naming paths are 501 no such api')
})

t.test('2.5: no v3 API (404); v1 and gRPC as before', async (t) => {
  const { server, call } = await start(t, { compat: '2.5' })
  for (const [method, path] of [['GET', '/v3/client/ns/instance/list'], ['GET', '/v3/client/cs/config'], ['POST', '/v3/admin/cs/config'], ['POST', '/v3/auth/user/login']] as const) {
    t.equal((await call(method, path, { serviceName: 's', dataId: 'd', groupName: 'G' })).status, 404, `${method} ${path}`)
  }
  t.equal((await call('POST', '/v1/cs/configs', { dataId: 'd', group: 'G', content: 'x' })).text, 'true')
  t.equal((await call('GET', '/v1/ns/instance/list', { serviceName: 's' })).status, 200)
  t.type(server.grpcPort, 'number')
})

t.test('3.3: no /v1 or /v2 but login and metrics (404, not 501); client auth on with the default user', async (t) => {
  const { server, call, json } = await start(t, { compat: '3.3' })
  t.same(server.auth, { username: 'nacos', password: 'nacos' })
  for (const [method, path] of [
    ['GET', '/v1/ns/instance/list'],
    ['POST', '/v1/ns/instance'],
    ['PUT', '/v1/ns/instance/beat'],
    ['GET', '/v1/cs/configs'],
    ['POST', '/v1/cs/configs/listener'],
    ['GET', '/v1/ns/nope'],
    ['GET', '/v2/ns/instance/list'],
    ['GET', '/v2/cs/config']
  ] as const) {
    t.equal((await call(method, path, { serviceName: 's' })).status, 404, `${method} ${path} is gone`)
  }
  t.same(await json('GET', '/v1/ns/operator/metrics'), { status: 'UP' }, 'the metrics probe stays, without a token')
  const refused = await call('GET', '/v3/client/ns/instance/list', { serviceName: 's' })
  t.equal(refused.status, 403, 'the client API needs a token')
  t.match(JSON.parse(refused.text), { status: 403, message: 'user not found!' })
  t.equal((await call('POST', '/v1/auth/login', { username: 'nacos', password: 'wrong' })).status, 403)
  const token = (await json('POST', '/v1/auth/login', { username: 'nacos', password: 'nacos' })).accessToken as string
  const v3Token = (await json('POST', '/v3/auth/user/login', { username: 'nacos', password: 'nacos' })).accessToken as string
  // The 2.x Java client logs in here: without it, it cannot start against 3.3 with auth.
  const javaToken = (await json('POST', '/v1/auth/users/login', { username: 'nacos', password: 'nacos' })).accessToken as string
  t.ok(token !== '' && v3Token !== '' && javaToken !== '', 'every login path gives a token')
  t.match(await json('GET', '/v3/client/ns/instance/list', { serviceName: 's' }, { headers: { accessToken: token } }), { code: 0, data: [] })

  const c = peer(t, server.grpcPort!)
  await c.connect()
  const reg = { serviceName: 'orders', type: 'registerInstance', instance: { ip: '127.0.0.1', port: 9001 } }
  t.match(await c.request('InstanceRequest', reg), { body: { success: false, errorCode: 403 } }, 'gRPC needs a token too')
  t.match(await c.request('InstanceRequest', reg, { accessToken: v3Token }), { body: { success: true } })
})

t.test('3.3 takes a given user, or auth: false', async (t) => {
  const given = await start(t, { compat: '3.3', auth: { username: 'admin', password: 'pw-1' } })
  t.same(given.server.auth, { username: 'admin', password: 'pw-1' })
  t.equal((await given.call('POST', '/v1/auth/login', { username: 'nacos', password: 'nacos' })).status, 403, 'no default user beside the given one')
  const off = await start(t, { compat: '3.3', auth: false })
  t.equal(off.server.auth, undefined)
  t.match(await off.json('GET', '/v3/client/ns/instance/list', { serviceName: 's' }), { code: 0, data: [] })
})

t.test('grpcPort: a chosen port, or 0 for any free one; a taken one is refused', async (t) => {
  const blocker = createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
  const free = (blocker.address() as { port: number }).port
  await new Promise((r) => blocker.close(r))
  const chosen = await start(t, { grpcPort: free })
  t.equal(chosen.server.grpcPort, free)
  const c = peer(t, free)
  t.match(await c.request('ServerCheckRequest'), { body: { success: true } })

  const any = await start(t, { grpcPort: 0 })
  t.type(any.server.grpcPort, 'number')
  t.not(any.server.grpcPort, any.server.port + 1000)
  await t.rejects(startNacosDevServer({ port: 0, host: '127.0.0.1', grpcPort: free }), /EADDRINUSE|No address added/, 'a taken gRPC port is reported, not retried elsewhere')
  await t.rejects(startNacosDevServer({ port: 0, grpcPort: 70000 }), { code: 'FLOWTAG_DEVSERVER_BAD_OPTION', message: /"grpcPort"/ })
  await t.rejects(startNacosDevServer({ compat: '3.2' as '3.3' }), { code: 'FLOWTAG_DEVSERVER_BAD_OPTION', message: /"compat"/ })
})
