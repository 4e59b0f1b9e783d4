// What the client makes of a login answer it cannot use, and of the v3-style wrapped one: a fake
// Nacos on loopback scripts the login answer and serves an empty instance list to everything else
// (or, `guarded`, answers 403 to a call without a token, as a Nacos with auth on).
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { NacosClient } from '../src/index.ts'

const auth = { username: 'nacos', password: 'pa55-word-xyz' }

type LoginAnswer = { status: number; body: string }

async function fakeNacos (t: { teardown(fn: () => unknown): void }, login: LoginAnswer, v3Login?: LoginAnswer, guarded = false) {
  const seen: Array<{ url: string; token: string | undefined }> = []
  const server = createServer((req: IncomingMessage, res) => {
    req.resume()
    seen.push({ url: req.url ?? '', token: req.headers.accesstoken as string | undefined })
    if (req.url?.startsWith('/nacos/v1/auth/login') === true) res.writeHead(login.status, { 'content-type': 'application/json' }).end(login.body)
    else if (req.url?.startsWith('/nacos/v3/auth/user/login') === true && v3Login !== undefined) res.writeHead(v3Login.status, { 'content-type': 'application/json' }).end(v3Login.body)
    else if (guarded && req.headers.accesstoken === undefined) res.writeHead(403, { 'content-type': 'text/plain' }).end('user not found!')
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'DEFAULT_GROUP@@flowtag-probe', hosts: [], cacheMillis: 10000 }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return { addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

t.test('a login answer that is not JSON fails with FLOWTAG_NACOS_AUTH', async (t) => {
  const fake = await fakeNacos(t, { status: 200, body: '<html>login</html>' })
  const c = new NacosClient({ serverAddr: fake.addr, ...auth, timeoutMs: 2000 })
  t.teardown(() => c.close())
  await t.rejects(c.naming.instances('orders'), { code: 'FLOWTAG_NACOS_AUTH', message: /answer is not JSON/ })
  t.notOk(fake.seen.some((r) => r.url.startsWith('/nacos/v1/ns/instance/list?') && r.url.includes('orders')), 'no guarded call without a token')
})

t.test('a login answer without a token fails with FLOWTAG_NACOS_AUTH', async (t) => {
  const fake = await fakeNacos(t, { status: 200, body: JSON.stringify({ data: { tokenTtl: 100 } }) })
  const c = new NacosClient({ serverAddr: fake.addr, ...auth, timeoutMs: 2000 })
  t.teardown(() => c.close())
  await t.rejects(c.naming.instances('orders'), { code: 'FLOWTAG_NACOS_AUTH', message: /no accessToken/ })
})

t.test('the token of a wrapped {data: {accessToken}} login answer is used', async (t) => {
  const fake = await fakeNacos(t, { status: 200, body: JSON.stringify({ code: 0, data: { accessToken: 'tok-wrapped', tokenTtl: 100 } }) })
  const c = new NacosClient({ serverAddr: fake.addr, ...auth, timeoutMs: 2000 })
  t.teardown(() => c.close())
  t.same(await c.naming.instances('orders'), [])
  const guarded = fake.seen.filter((r) => !r.url.startsWith('/nacos/v1/auth/login'))
  t.ok(guarded.length > 0 && guarded.every((r) => r.token === 'tok-wrapped'), 'the wrapped token goes in the accessToken header')
})

t.test('a server without the v1 login (404) is logged in through the v3 one', async (t) => {
  const fake = await fakeNacos(t, { status: 404, body: 'no such api' }, { status: 200, body: JSON.stringify({ accessToken: 'tok-v3' }) })
  const c = new NacosClient({ serverAddr: fake.addr, ...auth, timeoutMs: 2000 })
  t.teardown(() => c.close())
  t.same(await c.naming.instances('orders'), [])
  t.ok(fake.seen.some((r) => r.url.startsWith('/nacos/v3/auth/user/login')), 'tried the v3 login')
  const guarded = fake.seen.filter((r) => !r.url.includes('/auth/'))
  t.ok(guarded.length > 0 && guarded.every((r) => r.token === 'tok-v3'), 'the v3 token is used')
})

t.test('a login refused with Nacos 2.x\'s 500 "user not found!" is FLOWTAG_NACOS_AUTH (refused), not a failing server', async (t) => {
  // What a real Nacos 2.5.0 with auth on answers a wrong password (checked against one).
  const body = JSON.stringify({ status: 500, error: 'Internal Server Error', message: 'Server failed, Request processing failed; nested exception is ErrCode:0, ErrMsg:user not found!', path: '/nacos/v1/auth/login' })
  const fake = await fakeNacos(t, { status: 500, body }, undefined, true)
  const c = new NacosClient({ serverAddr: fake.addr, ...auth, timeoutMs: 2000, recoveryProbeMs: 100 })
  t.teardown(() => c.close())
  await t.rejects(c.naming.instances('orders'), { code: 'FLOWTAG_NACOS_AUTH', reason: 'refused', statusCode: 500, message: /refused the login of user "nacos" \(HTTP 500 user not found!\)/ })
  await t.rejects(c.ping(), { code: 'FLOWTAG_NACOS_AUTH', reason: 'refused' })
  const before = fake.seen.length
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(fake.seen.length, before, 'no recovery probe logging in again and again: the server is up, it refused')
})

t.test('a refused login at a Nacos with auth off: calls go on without a token, the login is tried again after 5 s, not per call', async (t) => {
  // Nacos 2.5.0 with auth off answers a login 412 "admin role user not exist" (checked against one), and serves every call.
  const body = JSON.stringify({ status: 412, error: 'Precondition Failed', message: 'admin role user not exist', path: '/nacos/v1/auth/login' })
  const fake = await fakeNacos(t, { status: 412, body })
  const c = new NacosClient({ serverAddr: fake.addr, ...auth, transport: 'http', timeoutMs: 2000 })
  t.teardown(() => c.close())
  await c.ping()
  for (let i = 0; i < 5; i++) t.same(await c.naming.instances(`orders-${i}`), [])
  const logins = fake.seen.filter((r) => r.url.startsWith('/nacos/v1/auth/login')).length
  t.equal(logins, 1, 'one login for six calls within 5 s')
  t.ok(fake.seen.filter((r) => !r.url.includes('/auth/')).every((r) => r.token === undefined), 'calls carry no token')
})

t.test('a login refused with Nacos 3.1\'s 500 "Handle API Compatibility failed" is FLOWTAG_NACOS_AUTH (refused)', async (t) => {
  // What a real Nacos 3.1.0 with auth on answers a wrong password, or an unknown user, on the v1 login path (checked against one).
  const body = JSON.stringify({ timestamp: '2026-12-07T19:15:37.244+00:00', status: 500, error: 'Internal Server Error', message: 'Handle API Compatibility failed, please see log for detail.', path: '/nacos/v1/auth/login' })
  const fake = await fakeNacos(t, { status: 500, body }, undefined, true)
  const c = new NacosClient({ serverAddr: fake.addr, ...auth, timeoutMs: 2000, recoveryProbeMs: 100 })
  t.teardown(() => c.close())
  await t.rejects(c.naming.instances('orders'), { code: 'FLOWTAG_NACOS_AUTH', reason: 'refused', statusCode: 500, message: /refused the login of user "nacos" \(HTTP 500 Handle API Compatibility failed\)/ })
  await t.rejects(c.ping(), { code: 'FLOWTAG_NACOS_AUTH', reason: 'refused' })
})
