// A refusal from Nacos is one coded error (FLOWTAG_NACOS_AUTH, a NacosAuthError) that says which
// credential is missing or refused and where to set it, over every transport; never a silent
// empty list, never a login storm.
import { setTimeout as sleep } from 'node:timers/promises'
import { waitFor } from '@flowtag/test-kit'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { NacosAuthError, NacosClient } from '../src/index.ts'
import { recordingProxy } from './fixtures/recording-proxy.ts'
import { memoryLogger, startDev, targets } from './fixtures/target.ts'

const auth = { username: 'nacos', password: 'pa55-word-xyz' }

for (const transport of ['auto', 'http-v1', 'http-v3'] as const) {
  t.test(`${transport}: missing credentials, a refused login, then the right ones`, async (t) => {
    const dev = await startDev({ auth })
    t.teardown(() => dev.close())
    const addr = `127.0.0.1:${dev.port}`

    const none = new NacosClient({ serverAddr: addr, transport })
    t.teardown(() => none.close())
    for (const call of [() => none.naming.instances('guarded'), () => none.config.get('guarded', 'G')]) {
      const err = await call().then(() => undefined, (e: unknown) => e)
      t.ok(err instanceof NacosAuthError, 'a NacosAuthError, not an empty answer')
      t.match(err, { code: 'FLOWTAG_NACOS_AUTH', reason: 'missing', statusCode: 403, message: /requires a login.*username\/password.*NACOS_USERNAME\/NACOS_PASSWORD/ })
    }

    const wrong = new NacosClient({ serverAddr: addr, transport, username: 'nacos', password: 'nope' })
    t.teardown(() => wrong.close())
    for (const call of [() => wrong.ping(), async () => { await wrong.naming.instances('guarded') }, () => wrong.config.publish('guarded', 'G', 'x')]) {
      await t.rejects(call(), { code: 'FLOWTAG_NACOS_AUTH', reason: 'refused', message: /refused the login of user "nacos".*NACOS_PASSWORD/ })
    }
    t.notOk(JSON.stringify(await wrong.ping().catch((e: Error) => e.message)).includes('nope'), 'the password is not in the message')

    const right = new NacosClient({ serverAddr: addr, transport, ...auth })
    t.teardown(() => right.close())
    await right.config.publish('guarded', 'G', 'ok')
    t.equal(await right.config.get('guarded', 'G'), 'ok')
    t.equal(right.server.transport, transport === 'auto' ? 'grpc' : transport)
  })
}

t.test('a refused login under watches and listeners: logins stay few (no storm), the error is logged, nothing is served empty', async (t) => {
  const dev = await startDev({ auth })
  t.teardown(() => dev.close())
  const proxy = await recordingProxy(dev.url)
  t.teardown(() => proxy.close())
  const log = memoryLogger()
  const c = new NacosClient({ serverAddr: `127.0.0.1:${proxy.port}`, transport: 'http', username: 'nacos', password: 'nope', logger: log })
  t.teardown(() => c.close())
  c.naming.subscribe('guarded-watch', () => t.fail('no list delivered'))
  c.config.listen('guarded-cfg', 'G', () => t.fail('no content delivered'))
  await waitFor('the refusal logged', () => log.lines.some((l) => l.level === 'warn' && (l.obj as { err?: { code?: string } }).err?.code === 'FLOWTAG_NACOS_AUTH'), 10_000)
  await sleep(3000)
  const logins = proxy.seen.filter((r) => r.url.startsWith('/nacos/v1/auth/login')).length
  // A storm would be hundreds in 3 s; the watch polls every 10 s and the listener backs off from 1 s.
  t.ok(logins <= 8, `${logins} logins in about 3 s`)
  await t.rejects(c.naming.instances('guarded-watch'), { code: 'FLOWTAG_NACOS_AUTH', reason: 'refused' })
})

// A real Nacos with auth on (./scripts/test: 2.5.0 with NACOS_USERNAME/NACOS_PASSWORD): the same
// three answers with the default transport.
for (const target of targets().filter((x) => x.kind === 'real')) {
  t.test('real server with auth: missing, refused, right', async (t) => {
    const server = await target.start()
    if (server.username === undefined) {
      t.comment('auth is off on this server: nothing to refuse')
      return
    }
    const none = new NacosClient({ serverAddr: server.addr })
    const wrong = new NacosClient({ serverAddr: server.addr, username: server.username, password: `${server.password ?? ''}-wrong` })
    const right = new NacosClient({ serverAddr: server.addr, username: server.username, password: server.password ?? '' })
    t.teardown(() => Promise.all([none.close(), wrong.close(), right.close()]))
    await t.rejects(none.config.get('guarded', 'G'), { code: 'FLOWTAG_NACOS_AUTH', reason: 'missing' })
    await t.rejects(none.naming.instances('guarded'), { code: 'FLOWTAG_NACOS_AUTH', reason: 'missing' })
    await t.rejects(wrong.ping(), { code: 'FLOWTAG_NACOS_AUTH', reason: 'refused' })
    await right.naming.instances('guarded')
    t.equal(right.server.transport, 'grpc')
  })
}

// As the Java client: a Nacos with auth off refuses a login it has no user for (2.x: 412 "admin role
// user not exist", 3.1: a 500, the dev server: 403) yet serves every call. Credentials set
// everywhere (NACOS_USERNAME in a shared environment) must not stop a service there.
for (const target of [{ kind: 'dev' as const }, ...targets().filter((x) => x.kind === 'real')]) {
  for (const transport of ['auto', 'http'] as const) {
    t.test(`${target.kind} server with auth off: a refused login is logged once and calls go on without a token (${transport})`, async (t) => {
      let addr: string
      if (target.kind === 'dev') {
        const dev = await startDev()
        t.teardown(() => dev.close())
        addr = `127.0.0.1:${dev.port}`
      } else {
        const server = await (target as { start: () => Promise<{ addr: string; username?: string }> }).start()
        if (server.username !== undefined) {
          t.comment('auth is on at this server: the refusal is tested above')
          return
        }
        addr = server.addr
      }
      const log = memoryLogger()
      const c = new NacosClient({ serverAddr: addr, transport, username: 'flowtag-nobody', password: 'nope', logger: log })
      t.teardown(() => c.close())
      await c.ping()
      const service = `auth-off-${transport}-${process.pid}`
      await c.naming.register(service, { ip: '127.0.0.1', port: 7001 })
      t.teardown(() => c.naming.deregister(service, { ip: '127.0.0.1', port: 7001 }).catch(() => {}))
      await waitFor('registered', async () => (await c.naming.instances(service)).length === 1, 15_000)
      const refusals = log.lines.filter((l) => l.level === 'warn' && /login refused/.test(l.msg ?? ''))
      t.equal(refusals.length, 1, 'the refused login logged once')
      t.match(refusals[0]?.obj, { err: { code: 'FLOWTAG_NACOS_AUTH', reason: 'refused' } })
      t.notOk(log.lines.some((l) => l.level === 'error'), 'no error logged')
    })
  }
}

t.test('logged in but not allowed on the namespace: reason forbidden, one fresh login per refused call', async (t) => {
  // A Nacos whose user may log in but not read namespace "prod" (Nacos's RBAC answers 403).
  const seen: string[] = []
  const server = createServer((req, res) => {
    req.resume()
    seen.push(req.url ?? '')
    if (req.url?.startsWith('/nacos/v1/auth/login') === true) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accessToken: 'tok', tokenTtl: 100 }))
    else res.writeHead(403, { 'content-type': 'text/plain' }).end('authorization failed!')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const c = new NacosClient({ serverAddr: `127.0.0.1:${(server.address() as AddressInfo).port}`, transport: 'http-v1', namespace: 'prod', ...auth })
  t.teardown(() => c.close())
  await t.rejects(c.naming.instances('orders'), { code: 'FLOWTAG_NACOS_AUTH', reason: 'forbidden', statusCode: 403, message: /refused user "nacos".*no permission on namespace "prod"/ })
  // The first load and the call's own retry: each list refused once, logged in again once, refused again.
  const logins = seen.filter((u) => u.startsWith('/nacos/v1/auth/login')).length
  const lists = seen.filter((u) => u.startsWith('/nacos/v1/ns/instance/list')).length
  t.ok(lists <= 4 && logins <= lists, `${logins} logins for ${lists} refused lists`)
  t.notOk(seen.some((u, i) => i > 0 && u.startsWith('/nacos/v1/auth/login') && (seen[i - 1] ?? '').startsWith('/nacos/v1/auth/login')), 'never two logins in a row')
})
