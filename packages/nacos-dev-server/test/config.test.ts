import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startNacosDevServer } from '../src/index.ts'
import { start } from './fixtures/nacos.ts'

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex')
const key = { dataId: 'rules.json', group: 'FLOWTAG' }
const listening = (entries: Array<[string, string, string, string?]>) => entries.map((e) => `${e.join('\u0002')}\u0001`).join('')

t.test('publish, get (md5, type), delete', async (t) => {
  const { call } = await start(t)
  t.equal((await call('GET', '/v1/cs/configs', key)).status, 404)
  const pub = await call('POST', '/v1/cs/configs', { ...key, content: '{"a":1}', type: 'json' })
  t.same([pub.status, pub.text], [200, 'true'])
  const got = await call('GET', '/v1/cs/configs', key)
  t.equal(got.text, '{"a":1}')
  t.equal(got.headers.get('content-md5'), md5('{"a":1}'))
  t.equal(got.headers.get('config-type'), 'json')
  t.match(got.headers.get('content-type'), /application\/json/)
  t.equal((await call('DELETE', '/v1/cs/configs', key)).text, 'true')
  const gone = await call('GET', '/v1/cs/configs', key)
  t.same([gone.status, gone.text], [404, 'config data not exist\n'])
  // deleting what is absent is still true
  t.equal((await call('DELETE', '/v1/cs/configs', key)).text, 'true')
})

t.test('content is kept as sent, white space included; other parameters are trimmed', async (t) => {
  const { call } = await start(t)
  const content = 'flowtag:\n  gray: true\n'
  await call('POST', '/v1/cs/configs', { dataId: ' rules.yaml ', group: key.group, content, type: 'yaml' })
  const got = await call('GET', '/v1/cs/configs', { dataId: 'rules.yaml', group: key.group })
  t.equal(got.text, content)
  t.equal(got.headers.get('content-md5'), md5(content))
})

t.test('tenants are isolated; "public" is the empty tenant', async (t) => {
  const { call } = await start(t)
  await call('POST', '/v1/cs/configs', { ...key, content: 'dev', tenant: 'dev' })
  await call('POST', '/v1/cs/configs', { ...key, content: 'public' })
  t.equal((await call('GET', '/v1/cs/configs', { ...key, tenant: 'dev' })).text, 'dev')
  t.equal((await call('GET', '/v1/cs/configs', key)).text, 'public')
  t.equal((await call('GET', '/v1/cs/configs', { ...key, tenant: 'public' })).text, 'public')
  t.equal((await call('GET', '/v1/cs/configs', { ...key, tenant: 'test' })).status, 404)
})

t.test('compare-and-set publish', async (t) => {
  const { call } = await start(t)
  await call('POST', '/v1/cs/configs', { ...key, content: 'one' })
  const stale = await call('POST', '/v1/cs/configs', { ...key, content: 'two' }, { headers: { casMd5: md5('zero') } })
  t.equal(stale.status, 500)
  t.match(stale.text, /Cas publish fail/)
  t.equal((await call('POST', '/v1/cs/configs', { ...key, content: 'two' }, { headers: { casMd5: md5('one') } })).text, 'true')
})

t.test('long poll: immediate answer when an md5 differs', async (t) => {
  const { call } = await start(t)
  await call('POST', '/v1/cs/configs', { ...key, content: 'v1' })
  const r = await call('POST', '/v1/cs/configs/listener', { 'Listening-Configs': listening([[key.dataId, key.group, ''], ['other', key.group, '']]) }, { headers: { 'Long-Pulling-Timeout': '30000' } })
  t.equal(r.status, 200)
  t.equal(r.text, 'rules.json%02FLOWTAG%01\n')
})

t.test('long poll: held, then released by a publish of a listened key only', async (t) => {
  const { call } = await start(t)
  await call('POST', '/v1/cs/configs', { ...key, content: 'v1', tenant: 'dev' })
  const started = Date.now()
  const poll = call('POST', '/v1/cs/configs/listener', { 'Listening-Configs': listening([[key.dataId, key.group, md5('v1'), 'dev']]) }, { headers: { 'Long-Pulling-Timeout': '30000' } })
  await new Promise((r) => setTimeout(r, 300))
  // an unrelated key and the same key in another tenant do not release it
  await call('POST', '/v1/cs/configs', { ...key, content: 'v2' })
  await call('POST', '/v1/cs/configs', { dataId: 'other', group: key.group, content: 'x', tenant: 'dev' })
  await new Promise((r) => setTimeout(r, 300))
  await call('POST', '/v1/cs/configs', { ...key, content: 'v2', tenant: 'dev' })
  const r = await poll
  t.equal(r.text, 'rules.json%02FLOWTAG%02dev%01\n')
  t.ok(Date.now() - started >= 600, 'it was held until the publish')
})

t.test('long poll: empty answer when nothing changes before the hold ends; short poll without the header', async (t) => {
  const { call } = await start(t, { longPollMinMs: 300 })
  const body = { 'Listening-Configs': listening([[key.dataId, key.group, '']]) }
  const started = Date.now()
  const r = await call('POST', '/v1/cs/configs/listener', body, { headers: { 'Long-Pulling-Timeout': '500' } })
  t.equal(r.text, '')
  t.ok(Date.now() - started >= 250)
  const short = await call('POST', '/v1/cs/configs/listener', body)
  t.same([short.status, short.text], [200, ''])
  const noHangup = await call('POST', '/v1/cs/configs/listener', body, { headers: { 'Long-Pulling-Timeout': '30000', 'Long-Pulling-Timeout-No-Hangup': 'true' } })
  t.equal(noHangup.text, '')
})

t.test('long poll: a delete releases it too', async (t) => {
  const { call } = await start(t)
  await call('POST', '/v1/cs/configs', { ...key, content: 'v1' })
  const poll = call('POST', '/v1/cs/configs/listener', { 'Listening-Configs': listening([[key.dataId, key.group, md5('v1')]]) }, { headers: { 'Long-Pulling-Timeout': '30000' } })
  await new Promise((r) => setTimeout(r, 200))
  await call('DELETE', '/v1/cs/configs', key)
  t.equal((await poll).text, 'rules.json%02FLOWTAG%01\n')
})

t.test('bad input', async (t) => {
  const { call } = await start(t)
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ group: 'G', content: 'x' }, /^caused: .*'dataId'.*;$/],
    [{ dataId: 'd', content: 'x' }, /^caused: .*'group'.*;$/],
    [{ dataId: 'd', group: 'G' }, /^caused: .*'content'.*;$/],
    [{ dataId: 'd', group: 'G', content: '   ' }, /'content'/],
    [{ dataId: 'bad id', group: 'G', content: 'x' }, /^caused: invalid dataId : bad id;$/],
    [{ dataId: 'd', group: 'G/H', content: 'x' }, /invalid group/],
    [{ dataId: 'd', group: 'G', content: 'x', tenant: 'a b' }, /invalid tenant/]
  ]
  for (const [params, message] of cases) {
    const r = await call('POST', '/v1/cs/configs', params)
    t.equal(r.status, 400, JSON.stringify(params))
    t.match(r.text, message)
  }
  for (const raw of ['', 'only-one-field\u0001', 'a\u0002b\u0002c\u0002d\u0002e\u0001', '%zz']) {
    const r = await call('POST', '/v1/cs/configs/listener', { 'Listening-Configs': raw })
    t.same([r.status, r.text], [400, 'caused: invalid probeModify;'], JSON.stringify(raw))
  }
})

t.test('configs persist to the data file across a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-dev-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dataFile = join(dir, 'nacos.json')
  const first = await startNacosDevServer({ port: 0, dataFile })
  const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() })
  await fetch(`${first.url}/nacos/v1/cs/configs`, form({ ...key, content: 'kept', type: 'json', tenant: 'dev' }))
  await first.close()
  t.match(await readFile(dataFile, 'utf8'), /"kept"/)
  const second = await startNacosDevServer({ port: 0, dataFile })
  t.teardown(() => second.close())
  const r = await fetch(`${second.url}/nacos/v1/cs/configs?dataId=${key.dataId}&group=${key.group}&tenant=dev`)
  t.equal(await r.text(), 'kept')
  t.equal(r.headers.get('config-type'), 'json')
  await t.rejects(startNacosDevServer({ port: 0, dataFile: join(dir) }), { code: 'FLOWTAG_DEVSERVER_DATA_FILE' })
})

t.test("Nacos's sizes over HTTP: a form over 2 MiB loses its parameters (Tomcat's max-http-form-post-size); content over configMaxContent is refused", async (t) => {
  const { server } = await start(t)
  const post = (n: number) => {
    const head = `dataId=form${n}&group=G&content=`
    return fetch(`${server.url}/nacos/v1/cs/configs`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: head + 'a'.repeat(n - head.length) })
  }
  const at = await post(2 * 1024 * 1024)
  t.same([at.status, await at.text()], [200, 'true'], '2097152 bytes pass, as on Nacos 2.5.0')
  const over = await post(2 * 1024 * 1024 + 1)
  t.equal(over.status, 400, 'one more byte and the parameters are gone')
  t.match(await over.text(), /'dataId'.*not present/)

  const small = await start(t, { configMaxContent: 10 })
  t.equal((await small.call('POST', '/v1/cs/configs', { ...key, content: '中'.repeat(10) })).status, 200, 'counted in characters (UTF-16 units, as Java), not bytes')
  const refused = await small.call('POST', '/v1/cs/configs', { ...key, content: 'x'.repeat(11) })
  t.same([refused.status, refused.text], [400, 'caused: invalid content, over 10;'])
})
