import t from 'tap'
import { NacosClient, type NacosClientOptions } from '../src/index.ts'
import { recordingProxy } from './fixtures/recording-proxy.ts'
import { startDev, targets } from './fixtures/target.ts'
import { unique, waitFor } from '@flowtag/test-kit'

for (const target of targets()) {
  t.test(`${target.kind}: get / publish / remove and listen`, async (t) => {
    const server = await target.start()
    t.teardown(() => server.close())
    const opts: NacosClientOptions = {
      serverAddr: server.addr,
      ...(server.username === undefined ? {} : { username: server.username, password: server.password })
    }
    const a = new NacosClient(opts)
    const b = new NacosClient(opts)
    t.teardown(() => Promise.all([a.close(), b.close()]))
    const dataId = unique('cfg')

    t.equal(await b.config.get(dataId, 'G'), undefined, 'absent is undefined')
    const seen: Array<string | undefined> = []
    b.config.listen(dataId, 'G', (c) => seen.push(c))
    await a.config.publish(dataId, 'G', '{"v":1}', 'json')
    await waitFor('first publish', () => seen.includes('{"v":1}'), 15_000)
    t.equal(await b.config.get(dataId, 'G'), '{"v":1}')
    await a.config.publish(dataId, 'G', '{"v":2}', 'json')
    await waitFor('second publish', () => seen.includes('{"v":2}'), 15_000)
    await a.config.remove(dataId, 'G')
    await waitFor('removal', () => seen.length === 3, 15_000)
    t.same(seen, ['{"v":1}', '{"v":2}', undefined])
  })
}

t.test('every listened key shares one long poll; a new key restarts it; unlisten stops it', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const proxy = await recordingProxy(dev.url)
  t.teardown(() => proxy.close())
  // HTTP v1's long poll (the proxy sees HTTP only).
  const c = new NacosClient({ serverAddr: `127.0.0.1:${proxy.port}`, group: 'APP', transport: 'http' })
  const pub = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, group: 'APP' })
  t.teardown(() => Promise.all([c.close(), pub.close()]))
  const got: string[] = []
  const listen = (k: string) => c.config.listen(k, undefined, (v) => got.push(`${k}=${v}`))
  const offs = [listen('k1'), listen('k2')]
  const polls = () => proxy.inFlight().filter((r) => r.url.startsWith('/nacos/v1/cs/configs/listener'))
  await waitFor('one poll with two keys', () => polls().length === 1 && decodeURIComponent(polls()[0]?.body ?? '').includes('k2'), 15_000)
  offs.push(listen('k3'))
  await waitFor('one poll with all keys', () => polls().length === 1 && decodeURIComponent(polls()[0]?.body ?? '').includes('k3'), 15_000)
  const body = new URLSearchParams(polls()[0]?.body)
  const keys = (body.get('Listening-Configs') ?? '').split('\u0001').filter(Boolean).map((r) => r.split('\u0002').slice(0, 2).join('/'))
  t.same(keys.sort(), ['k1/APP', 'k2/APP', 'k3/APP'])
  t.equal(polls()[0]?.headers['long-pulling-timeout'], '30000')

  await pub.config.publish('k2', 'APP', 'two')
  await pub.config.publish('k3', 'APP', 'three')
  await waitFor('both changes', () => got.includes('k2=two') && got.includes('k3=three'), 15_000)
  t.notOk(got.some((g) => g.startsWith('k1')), 'unchanged key not reported')
  await waitFor('poll resumed', () => polls().length === 1, 15_000)
  for (const off of offs) off()
  await waitFor('no poll once nothing is listened', () => polls().length === 0, 15_000)
})

t.test('http-v3: md5 polling drives listeners (no long poll on the v3 client API)', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const v3 = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, transport: 'http-v3', configPollIntervalMs: 100 })
  const v1 = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}`, transport: 'http-v1' })
  t.teardown(() => Promise.all([v3.close(), v1.close()]))
  t.equal(await v3.config.get('three', 'G'), undefined)
  const seen: Array<string | undefined> = []
  v3.config.listen('three', 'G', (c) => seen.push(c))
  await v1.config.publish('three', 'G', 'a: 1', 'yaml')
  await waitFor('v1 publish seen by v3 poller', () => seen.includes('a: 1'), 15_000)
  t.equal(await v3.config.get('three', 'G'), 'a: 1')
  await v3.config.publish('three', 'G', 'a: 2', 'yaml')
  await waitFor('v3 admin publish', () => seen.includes('a: 2'), 15_000)
  t.equal(await v1.config.get('three', 'G'), 'a: 2')
  await v3.config.remove('three', 'G')
  await waitFor('removal', () => seen.length === 3, 15_000)
  t.same(seen, ['a: 1', 'a: 2', undefined])
  t.equal(v3.server.transport, 'http-v3')
})
