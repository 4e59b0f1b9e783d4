import t from 'tap'
import { NacosClient } from '../src/index.ts'
import { recordingProxy } from './fixtures/recording-proxy.ts'
import { memoryLogger, startDev } from './fixtures/target.ts'
import { waitFor } from '@flowtag/test-kit'

const auth = { username: 'nacos', password: 'pa55-word-xyz' }

t.test('login, token in a header only, refresh before the ttl runs out, secrets never logged', async (t) => {
  const dev = await startDev({ auth: { ...auth, tokenTtlSeconds: 2 } })
  t.teardown(() => dev.close())
  const proxy = await recordingProxy(dev.url)
  t.teardown(() => proxy.close())
  const logger = memoryLogger()
  const c = new NacosClient({ serverAddr: `127.0.0.1:${proxy.port}`, ...auth, logger })
  t.teardown(() => c.close())

  await c.config.publish('secure', 'G', 'v1')
  t.equal(await c.config.get('secure', 'G'), 'v1')
  const logins = () => proxy.seen.filter((r) => r.url.startsWith('/nacos/v1/auth/login'))
  t.equal(logins().length, 1)
  t.equal(new URLSearchParams(logins()[0]?.body).get('password'), auth.password, 'password goes in the form body')

  // Past 90% of the 2 s ttl the client logs in again before using the token.
  await new Promise((r) => setTimeout(r, 2100))
  t.equal(await c.config.get('secure', 'G'), 'v1')
  t.equal(logins().length, 2, 'refreshed')
  t.notOk(proxy.seen.some((r) => r.url.includes('accessToken') || r.url.includes('password')), 'no secret in any URL')
  const guarded = proxy.seen.filter((r) => !r.url.startsWith('/nacos/v1/auth/login'))
  t.ok(guarded.length > 0 && guarded.every((r) => typeof r.headers.accesstoken === 'string'), 'token sent as the accessToken header')
  const tokens = guarded.map((r) => r.headers.accesstoken as string)
  const logged = JSON.stringify(logger.lines)
  t.notOk(logged.includes(auth.password), 'password never logged')
  t.notOk(tokens.some((tok) => logged.includes(tok)), 'token never logged')
  t.notOk(proxy.seen.some((r) => r.headers.accesstoken !== undefined && r.body.includes(auth.password)), 'no password once a token exists')
})

for (const transport of ['http', 'auto'] as const) {
  t.test(`${transport}: one re-login on 403 (server forgot the token), then carry on`, async (t) => {
    let dev = await startDev({ auth })
    const port = dev.port
    t.teardown(() => dev.close())
    const c = new NacosClient({ serverAddr: `127.0.0.1:${port}`, ...auth, transport })
    t.teardown(() => c.close())
    await c.config.publish('relogin', 'G', 'x')
    t.equal(c.server.transport, transport === 'auto' ? 'grpc' : 'http-v1')
    await dev.close()
    dev = await startDev({ auth, port }) // new process state: old tokens are invalid
    await c.config.publish('relogin', 'G', 'y')
    t.equal(await c.config.get('relogin', 'G'), 'y')
  })
}

t.test('bad credentials and missing credentials fail with FLOWTAG_NACOS_AUTH', async (t) => {
  const dev = await startDev({ auth })
  t.teardown(() => dev.close())
  const wrong = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, username: 'nacos', password: 'nope' })
  const none = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}` })
  t.teardown(() => Promise.all([wrong.close(), none.close()]))
  await t.rejects(wrong.config.get('x', 'G'), { code: 'FLOWTAG_NACOS_AUTH', statusCode: 403 })
  await t.rejects(none.naming.instances('x'), { code: 'FLOWTAG_NACOS_AUTH', statusCode: 403 })
  await t.rejects(wrong.ping(), { code: 'FLOWTAG_NACOS_AUTH' })
  const ok = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, ...auth, transport: 'http-v3' })
  t.teardown(() => ok.close())
  await ok.naming.register('authed', { ip: '127.0.0.1', port: 4300 })
  await waitFor('v3 with a token', async () => (await ok.naming.instances('authed')).length === 1, 15_000)
})
