import t from 'tap'
import { waitFor } from '@flowtag/test-kit'
import { start } from './fixtures/nacos.ts'

const reg = { serviceName: 'orders', ip: '127.0.0.1', port: '9001' }

t.test('register, list, detail, update, deregister (v1)', async (t) => {
  const { call, json } = await start(t)
  const r = await call('POST', '/v1/ns/instance', { ...reg, weight: '2', metadata: '{"version":"v2"}' })
  t.same([r.status, r.text], [200, 'ok'])

  const list = await json('GET', '/v1/ns/instance/list', { serviceName: 'orders' })
  t.equal(list.name, 'DEFAULT_GROUP@@orders')
  t.equal(list.groupName, 'DEFAULT_GROUP')
  t.equal(list.cacheMillis, 10000)
  t.equal(list.checksum, '')
  t.type(list.lastRefTime, 'number')
  t.match(list.hosts, [
    {
      instanceId: '127.0.0.1#9001#DEFAULT#DEFAULT_GROUP@@orders',
      ip: '127.0.0.1',
      port: 9001,
      weight: 2,
      healthy: true,
      enabled: true,
      ephemeral: true,
      clusterName: 'DEFAULT',
      serviceName: 'DEFAULT_GROUP@@orders',
      metadata: { version: 'v2' },
      instanceHeartBeatInterval: 5000,
      instanceHeartBeatTimeOut: 15000,
      ipDeleteTimeout: 30000
    }
  ])

  const detail = await json('GET', '/v1/ns/instance', reg)
  t.match(detail, { service: 'DEFAULT_GROUP@@orders', ip: '127.0.0.1', port: 9001, weight: 2, metadata: { version: 'v2' } })

  // update applies weight, enabled and metadata; a disabled instance is never listed
  t.equal((await call('PUT', '/v1/ns/instance', { ...reg, weight: '5', enabled: 'false', metadata: 'version=v3' })).text, 'ok')
  t.same((await json('GET', '/v1/ns/instance/list', { serviceName: 'orders' })).hosts, [])
  t.match(await json('GET', '/v1/ns/instance', reg), { weight: 5, metadata: { version: 'v3' } })

  t.equal((await call('DELETE', '/v1/ns/instance', reg)).text, 'ok')
  t.equal((await call('GET', '/v1/ns/instance', reg)).status, 404)
  // deregistering what is not there is still ok, as Nacos answers
  t.equal((await call('DELETE', '/v1/ns/instance', reg)).text, 'ok')
})

t.test('group@@service in serviceName equals serviceName + groupName', async (t) => {
  const { call, json } = await start(t)
  await call('POST', '/v1/ns/instance', { ...reg, serviceName: 'G1@@orders' })
  const list = await json('GET', '/v1/ns/instance/list', { serviceName: 'orders', groupName: 'G1' })
  t.equal(list.name, 'G1@@orders')
  t.equal(list.hosts.length, 1)
  // an unknown service is 200 with no hosts, never 404
  const none = await call('GET', '/v1/ns/instance/list', { serviceName: 'orders' })
  t.equal(none.status, 200)
  t.same(JSON.parse(none.text).hosts, [])
})

t.test('namespaces and groups are isolated', async (t) => {
  const { call, json } = await start(t)
  await call('POST', '/v1/ns/instance', { ...reg, namespaceId: 'dev' })
  await call('POST', '/v1/ns/instance', { ...reg, port: '9002', groupName: 'G2' })
  t.equal((await json('GET', '/v1/ns/instance/list', { serviceName: 'orders', namespaceId: 'dev' })).hosts.length, 1)
  t.equal((await json('GET', '/v1/ns/instance/list', { serviceName: 'orders' })).hosts.length, 0)
  t.equal((await json('GET', '/v1/ns/instance/list', { serviceName: 'orders', groupName: 'G2' })).hosts[0].port, 9002)
  // deregistering in one namespace leaves the other alone
  await call('DELETE', '/v1/ns/instance', { ...reg, namespaceId: 'test' })
  t.equal((await json('GET', '/v1/ns/instance/list', { serviceName: 'orders', namespaceId: 'dev' })).hosts.length, 1)
})

t.test('beats: interval, light beat 20404, full beat re-registers', async (t) => {
  const { call, json } = await start(t)
  const light = await json('PUT', '/v1/ns/instance/beat', reg)
  t.same(light, { clientBeatInterval: 5000, code: 20404, lightBeatEnabled: true })

  const beat = JSON.stringify({ serviceName: 'DEFAULT_GROUP@@orders', ip: '127.0.0.1', port: 9001, cluster: 'DEFAULT', weight: 3, metadata: { version: 'v1' }, scheduled: true })
  const full = await json('PUT', '/v1/ns/instance/beat', { serviceName: 'DEFAULT_GROUP@@orders', beat })
  t.same(full, { clientBeatInterval: 5000, code: 10200, lightBeatEnabled: true })
  const list = await json('GET', '/v1/ns/instance/list', { serviceName: 'orders' })
  t.match(list.hosts, [{ ip: '127.0.0.1', port: 9001, weight: 3, metadata: { version: 'v1' } }])

  t.equal((await json('PUT', '/v1/ns/instance/beat', reg)).code, 10200)
  // the interval the server asks for follows the instance's preserved metadata
  await call('POST', '/v1/ns/instance', { ...reg, port: '9003', metadata: '{"preserved.heart.beat.interval":"1000"}' })
  t.equal((await json('PUT', '/v1/ns/instance/beat', { ...reg, port: '9003' })).clientBeatInterval, 1000)
})

t.test('ephemeral health: unhealthy after the beat timeout, removed after the delete timeout, revived by a beat', async (t) => {
  const { call, json } = await start(t, { heartbeat: { checkIntervalMs: 100 } })
  const metadata = JSON.stringify({ 'preserved.heart.beat.interval': '200', 'preserved.heart.beat.timeout': '600', 'preserved.ip.delete.timeout': '1500' })
  await call('POST', '/v1/ns/instance', { ...reg, metadata })
  await call('POST', '/v1/ns/instance', { ...reg, port: '9002', metadata })
  const hosts = async () => (await json('GET', '/v1/ns/instance/list', { serviceName: 'orders' })).hosts as Array<{ port: number; healthy: boolean }>

  // keep 9002 beating; 9001 goes silent
  const beating = setInterval(() => void call('PUT', '/v1/ns/instance/beat', { ...reg, port: '9002' }), 150)
  t.teardown(() => clearInterval(beating))
  await waitFor('9001 to turn unhealthy', async () => (await hosts()).find((h) => h.port === 9001)?.healthy === false)
  t.equal((await json('GET', '/v1/ns/instance/list', { serviceName: 'orders', healthyOnly: 'true' })).hosts.length, 1, 'healthyOnly hides it')
  await waitFor('9001 to be deleted', async () => !(await hosts()).some((h) => h.port === 9001))
  t.same((await hosts()).map((h) => h.port), [9002], 'the beating instance stays')

  // an instance past its beat timeout turns healthy again on its next beat
  clearInterval(beating)
  await waitFor('9002 to turn unhealthy', async () => (await hosts()).find((h) => h.port === 9002)?.healthy === false)
  t.equal((await json('PUT', '/v1/ns/instance/beat', { ...reg, port: '9002' })).code, 10200)
  t.equal((await hosts()).find((h) => h.port === 9002)?.healthy, true)
})

t.test('service list and operator metrics', async (t) => {
  const { call, json } = await start(t)
  for (const s of ['a', 'b', 'c']) await call('POST', '/v1/ns/instance', { ...reg, serviceName: s })
  await call('POST', '/v1/ns/instance', { ...reg, serviceName: 'other', groupName: 'G' })
  t.same(await json('GET', '/v1/ns/service/list', { pageNo: '1', pageSize: '2' }), { count: 3, doms: ['a', 'b'] })
  t.same(await json('GET', '/v1/ns/service/list', { pageNo: '2', pageSize: '2' }), { count: 3, doms: ['c'] })
  t.same(await json('GET', '/v1/ns/service/list', { pageNo: '1', pageSize: '10', groupName: 'G' }), { count: 1, doms: ['other'] })
  t.same(await json('GET', '/v1/ns/operator/metrics'), { status: 'UP' })
  t.match(await json('GET', '/v1/ns/operator/metrics', { onlyStatus: 'false' }), { status: 'UP', serviceCount: 4, instanceCount: 4 })
})

t.test('bad input gets Nacos 400s naming the parameter, and never a crash', async (t) => {
  const { call, json } = await start(t)
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ ip: '1.1.1.1', port: '1' }, /^Param 'serviceName' is required\.$/],
    [{ serviceName: 's', port: '1' }, /^Param 'ip' is required\.$/],
    [{ serviceName: 's', ip: '1.1.1.1' }, /^Param 'port' is required\.$/],
    [{ serviceName: 's', ip: '1.1.1.1', port: 'eighty' }, /Param 'port' is illegal/],
    [{ serviceName: 's', ip: '1.1.1.1', port: '70000' }, /Param 'port' is illegal/],
    [{ serviceName: 's', ip: '1.1.1.1', port: '1', weight: '10001' }, /weights range from 0.0 to 10000.0/],
    [{ serviceName: 's', ip: '1.1.1.1', port: '1', weight: 'heavy' }, /Param 'weight' is illegal/],
    [{ serviceName: 's', ip: '1.1.1.1', port: '1', metadata: '[1,2]' }, /metadata format incorrect/],
    [{ serviceName: 's', ip: '1.1.1.1', port: '1', clusterName: 'bad cluster' }, /Param 'clusterName' is illegal/],
    [{ serviceName: '@@s', ip: '1.1.1.1', port: '1' }, /Param 'serviceName' is illegal/],
    [{ serviceName: 's', ip: '1.1.1.1', port: '1', namespaceId: 'no/such' }, /Param 'namespaceId' is illegal/],
    [{ serviceName: 's', ip: '1.1.1.1', port: '1', metadata: '{"preserved.heart.beat.interval":"5000","preserved.heart.beat.timeout":"10"}' }, /heart beat timeout/]
  ]
  for (const [params, message] of cases) {
    const r = await call('POST', '/v1/ns/instance', params)
    t.equal(r.status, 400, JSON.stringify(params))
    t.match(r.text, message)
  }
  const badBeat = await call('PUT', '/v1/ns/instance/beat', { serviceName: 's', beat: '{not json' })
  t.equal(badBeat.status, 400)
  t.match(badBeat.text, /Param 'beat' is illegal/)
  t.equal((await call('GET', '/v1/ns/service/list', { pageNo: '1' })).text, "Param 'pageSize' is required.")
  t.equal((await call('GET', '/v1/ns/no-such-api')).status, 501)
  t.equal((await call('GET', '/v1/cs/no-such-api')).status, 404)
  // nothing above registered anything, and the server still answers
  t.equal((await json('GET', '/v1/ns/service/list', { pageNo: '1', pageSize: '10' })).count, 0)
})

t.test('an oversized body is refused with 413', async (t) => {
  const { call } = await start(t, { maxBodyBytes: 1024 })
  const r = await call('POST', '/v1/ns/instance', { ...reg, metadata: JSON.stringify({ big: 'x'.repeat(2000) }) })
  t.equal(r.status, 413)
})
