import t from 'tap'
import { startNacosDevServer } from '../src/index.ts'
import { start } from './fixtures/nacos.ts'

const auth = { username: 'nacos', password: 'pw-123' }

t.test('auth on: login gives a token; calls without one get 403', async (t) => {
  const { call, json } = await start(t, { auth })
  const denied = await call('POST', '/v1/ns/instance', { serviceName: 's', ip: '127.0.0.1', port: '1' })
  t.equal(denied.status, 403)
  t.match(JSON.parse(denied.text), { status: 403, error: 'Forbidden', message: 'user not found!', path: '/nacos/v1/ns/instance' })
  t.equal((await call('GET', '/v1/cs/configs', { dataId: 'd', group: 'g' })).status, 403)
  // the metrics probe stays open
  t.same(await json('GET', '/v1/ns/operator/metrics'), { status: 'UP' })

  const bad = await call('POST', '/v1/auth/login', { username: 'nacos', password: 'wrong' })
  t.equal(bad.status, 403)
  const login = await call('POST', '/v1/auth/login', auth)
  t.equal(login.status, 200)
  const body = JSON.parse(login.text)
  t.match(body, { accessToken: String, tokenTtl: 18000, globalAdmin: true, username: 'nacos' })
  t.equal(login.headers.get('authorization'), `Bearer ${body.accessToken}`)

  for (const headers of [{ accessToken: body.accessToken }, { authorization: `Bearer ${body.accessToken}` }] as Array<Record<string, string>>) {
    t.equal((await call('POST', '/v1/ns/instance', { serviceName: 's', ip: '127.0.0.1', port: '1' }, { headers })).text, 'ok')
  }
  t.equal((await call('GET', '/v1/ns/instance/list', { serviceName: 's', accessToken: body.accessToken })).status, 200)
  // username and password on each call are accepted too, as the official config SDK sends them
  t.equal((await call('GET', '/v1/ns/instance/list', { serviceName: 's', ...auth })).status, 200)
  const forged = await call('GET', '/v1/ns/instance/list', { serviceName: 's' }, { headers: { accessToken: 'forged' } })
  t.equal(JSON.parse(forged.text).message, 'token invalid!')
  // the v3 login path answers the same
  t.equal((await call('POST', '/v3/auth/user/login', auth)).status, 200)
})

t.test('auth on: an expired token is refused with "token expired!"', async (t) => {
  const { call } = await start(t, { auth: { ...auth, tokenTtlSeconds: 1 } })
  const { accessToken, tokenTtl } = JSON.parse((await call('POST', '/v1/auth/login', auth)).text)
  t.equal(tokenTtl, 1)
  t.equal((await call('GET', '/v1/ns/instance/list', { serviceName: 's' }, { headers: { accessToken } })).status, 200)
  await new Promise((r) => setTimeout(r, 1100))
  const r = await call('GET', '/v1/ns/instance/list', { serviceName: 's' }, { headers: { accessToken } })
  t.equal(r.status, 403)
  t.equal(JSON.parse(r.text).message, 'token expired!')
})

t.test('auth off: no token needed; a known user can still log in; no user means 403', async (t) => {
  const { call } = await start(t, { auth: { ...auth, enabled: false } })
  t.equal((await call('POST', '/v1/ns/instance', { serviceName: 's', ip: '127.0.0.1', port: '1' })).text, 'ok')
  t.equal((await call('POST', '/v1/auth/login', auth)).status, 200)
  const plain = await start(t)
  t.equal((await plain.call('POST', '/v1/auth/login', auth)).status, 403)
})

t.test('bad options are refused with a coded error naming the field', async (t) => {
  await t.rejects(startNacosDevServer({ port: -1 }), { code: 'FLOWTAG_DEVSERVER_BAD_OPTION', message: /"port"/ })
  await t.rejects(startNacosDevServer({ auth: { username: 'u', password: '' } }), { code: 'FLOWTAG_DEVSERVER_BAD_OPTION', message: /"auth.password"/ })
  await t.rejects(startNacosDevServer({ heartbeat: { timeoutMs: 0 } }), { message: /"heartbeat.timeoutMs"/ })
  // @ts-expect-error an unknown option is refused, not ignored
  await t.rejects(startNacosDevServer({ prot: 1 }), { code: 'FLOWTAG_DEVSERVER_BAD_OPTION' })
})
