import t from 'tap'
import { start } from './fixtures/nacos.ts'

const inst = { serviceName: 'orders', groupName: 'G', ip: '127.0.0.1', port: '9001' }

t.test('v3 client naming: register, heartbeat, list, deregister, with {code, message, data}', async (t) => {
  const { json } = await start(t)
  t.same(await json('POST', '/v3/client/ns/instance', { ...inst, heartBeat: 'true' }), {
    code: 21003,
    message: 'instance not found',
    data: null
  })
  t.same(await json('POST', '/v3/client/ns/instance', { ...inst, metadata: '{"version":"v2"}' }), { code: 0, message: 'success', data: 'ok' })
  t.same(await json('POST', '/v3/client/ns/instance', { ...inst, heartBeat: 'true' }), { code: 0, message: 'success', data: 'ok' })
  const list = await json('GET', '/v3/client/ns/instance/list', { serviceName: 'orders', groupName: 'G' })
  t.equal(list.code, 0)
  t.match(list.data, [{ ip: '127.0.0.1', port: 9001, metadata: { version: 'v2' }, healthy: true }])
  t.notOk('instanceId' in list.data[0], 'v3 instances carry no instanceId, as Nacos 3 answers')
  // the v1 view sees the same instance
  t.equal((await json('GET', '/v1/ns/instance/list', { serviceName: 'G@@orders' })).hosts.length, 1)
  t.same(await json('DELETE', '/v3/client/ns/instance', inst), { code: 0, message: 'success', data: 'ok' })
  t.same((await json('GET', '/v3/client/ns/instance/list', { serviceName: 'orders', groupName: 'G' })).data, [])
})

t.test('v3 bad input: wrapped 400s', async (t) => {
  const { call } = await start(t)
  const missing = await call('POST', '/v3/client/ns/instance', { serviceName: 'orders', port: '1' })
  t.equal(missing.status, 400)
  t.match(JSON.parse(missing.text), { code: 10000, message: 'parameter missing', data: /'ip'/ })
  const grouped = await call('POST', '/v3/client/ns/instance', { ...inst, serviceName: 'G@@orders' })
  t.match(JSON.parse(grouped.text), { code: 20002, data: /serviceName/ })
})

t.test('v3 config: admin publish, client get, 20004 when absent, delete', async (t) => {
  const { json, call } = await start(t)
  const key = { dataId: 'rules.json', groupName: 'FLOWTAG', namespaceId: 'public' }
  // a missing config is HTTP 200 with code 20004, as Nacos 3 answers
  const absent = await call('GET', '/v3/client/cs/config', key)
  t.equal(absent.status, 200)
  t.same(JSON.parse(absent.text), { code: 20004, message: 'resource not found', data: null })
  const noGroup = await call('GET', '/v3/client/cs/config', { dataId: 'rules.json' })
  t.equal(noGroup.status, 400)
  t.match(noGroup.text, /'groupName'/)
  t.same(await json('POST', '/v3/admin/cs/config', { ...key, content: '{"v":1}', type: 'json' }), { code: 0, message: 'success', data: true })
  const got = await json('GET', '/v3/client/cs/config', key)
  t.match(got, { code: 0, data: { content: '{"v":1}', contentType: 'json', md5: /^[0-9a-f]{32}$/ } })
  // the same config through v1, where public is the empty tenant
  t.equal((await call('GET', '/v1/cs/configs', { dataId: 'rules.json', group: 'FLOWTAG' })).text, '{"v":1}')
  t.same(await json('DELETE', '/v3/admin/cs/config', key), { code: 0, message: 'success', data: true })
  t.equal((await json('GET', '/v3/client/cs/config', key)).code, 20004)
})
