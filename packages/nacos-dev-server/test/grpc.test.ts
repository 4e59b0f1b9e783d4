// The gRPC client protocol (HTTP port + 1000), driven with @grpc/grpc-js and the package's own
// wire definitions: no Nacos client in between, so each request and push is checked as sent.
import { createServer } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { waitFor } from '@flowtag/test-kit'
import { encodePayload } from '../src/grpc-wire.ts'
import { startNacosDevServer } from '../src/index.ts'
import { peer } from './fixtures/grpc-peer.ts'
import { start } from './fixtures/nacos.ts'

const instance = (port: number, extra: Record<string, unknown> = {}) => ({ ip: '127.0.0.1', port, weight: 2, healthy: true, enabled: true, ephemeral: true, metadata: { lane: 'v2', n: 1 }, ...extra })

t.test('ServerCheck answers a connection id; other requests need the stream first (301)', async (t) => {
  const { server } = await start(t)
  t.equal(server.grpcPort, server.port + 1000)
  const c = peer(t, server.grpcPort!)
  const check = await c.request('ServerCheckRequest')
  t.equal(check.type, 'ServerCheckResponse')
  t.match(check.body, { resultCode: 200, success: true, supportAbilityNegotiation: true, connectionId: /^\d+_127\.0\.0\.1_\d+$/ })
  // a body that is not JSON (or not an object) is read as {}: the type alone still answers
  for (const text of ['not json!', 'null']) {
    const bytes = encodePayload({ type: 'ServerCheckRequest', headers: {}, body: { m: 'MARK' } })
    const at = bytes.indexOf('{"m":"MARK"}')
    const swapped = Buffer.concat([bytes.subarray(0, at), Buffer.from(text.padEnd(12, ' ')), bytes.subarray(at + 12)])
    t.match(await c.raw(swapped), { type: 'ServerCheckResponse', body: { success: true } }, text)
  }
  const early = await c.request('ServiceQueryRequest', { serviceName: 'orders' })
  t.match(early, { type: 'ErrorResponse', body: { resultCode: 500, errorCode: 301, success: false, message: 'Connection is unregistered.' } })
})

t.test('the setup with an abilityTable is acked on the stream; without one it is not', async (t) => {
  const { server } = await start(t)
  const a = peer(t, server.grpcPort!)
  await a.connect(true)
  const ack = await waitFor('the SetupAckRequest', () => a.pushes.find((m) => m.type === 'SetupAckRequest'), 5000)
  t.match(ack.body, { abilityTable: {}, module: 'internal' })
  const b = peer(t, server.grpcPort!)
  await b.connect(false)
  t.match(await b.request('HealthCheckRequest'), { type: 'HealthCheckResponse', body: { success: true } })
  await new Promise((r) => setTimeout(r, 100))
  t.same(b.pushes, [], 'no ack without an abilityTable')
})

t.test('naming: register, query, batch, deregister; unknown types are refused', async (t) => {
  const { server, json } = await start(t)
  const c = peer(t, server.grpcPort!)
  await c.connect()
  const reg = await c.request('InstanceRequest', { namespace: 'public', groupName: 'G', serviceName: 'orders', type: 'registerInstance', instance: instance(9001) })
  t.match(reg, { type: 'InstanceResponse', body: { success: true, type: 'registerInstance' } })
  const http = await json('GET', '/v1/ns/instance/list', { serviceName: 'G@@orders' })
  t.match(http.hosts, [{ ip: '127.0.0.1', port: 9001, weight: 2, metadata: { lane: 'v2', n: '1' }, ephemeral: true }], 'visible over HTTP, metadata as strings')

  const q = await c.request('ServiceQueryRequest', { namespace: 'public', groupName: 'G', serviceName: 'orders' })
  t.equal(q.type, 'QueryServiceResponse')
  t.match(q.body.serviceInfo, { name: 'orders', groupName: 'G', valid: true, hosts: [{ port: 9001 }] })
  // namespace and group default to public / DEFAULT_GROUP
  t.match((await c.request('ServiceQueryRequest', { serviceName: 'orders' })).body.serviceInfo, { name: 'orders', groupName: 'DEFAULT_GROUP', hosts: [] })

  const batch = await c.request('BatchInstanceRequest', { groupName: 'G', serviceName: 'orders', type: 'batchRegisterInstance', instances: [instance(9002), instance(9003, { weight: undefined, healthy: false, clusterName: 'C1' })] })
  t.match(batch, { type: 'BatchInstanceResponse', body: { success: true, type: 'batchRegisterInstance' } })
  const hosts = ((await c.request('ServiceQueryRequest', { groupName: 'G', serviceName: 'orders' })).body.serviceInfo as { hosts: Array<Record<string, unknown>> }).hosts
  // One entry per connection and service, as Nacos keeps it: the batch replaces the single register.
  t.same(hosts.map((h) => h.port).sort(), [9002, 9003])
  t.match(hosts.find((h) => h.port === 9003), { weight: 1, healthy: false, clusterName: 'C1' })
  t.match(await c.request('BatchInstanceRequest', { serviceName: 'none', type: 'batchRegisterInstance', instances: 'not a list' }), { body: { success: true, type: 'batchRegisterInstance' } })
  t.match(await c.request('BatchInstanceRequest', { serviceName: 'none', type: 'batchDeregisterInstance', instances: [] }), {
    type: 'ErrorResponse',
    body: { success: false, resultCode: 400, errorCode: 400, message: 'Unsupported request type batchDeregisterInstance' }
  })

  const dereg = await c.request('InstanceRequest', { groupName: 'G', serviceName: 'orders', type: 'deregisterInstance', instance: { ip: '127.0.0.1', port: 9001 } })
  t.match(dereg, { type: 'InstanceResponse', body: { success: true, type: 'deregisterInstance' } })
  t.same((await json('GET', '/v1/ns/instance/list', { serviceName: 'G@@orders' })).hosts, [], 'a deregister drops the connection\'s whole entry for the service, whatever instance it names')

  t.match(await c.request('InstanceRequest', { serviceName: 'orders', type: 'updateInstance', instance: instance(9001) }), {
    type: 'ErrorResponse',
    body: { success: false, errorCode: 400, message: 'Unsupported request type updateInstance' }
  })
  t.match(await c.request('NoSuchRequest'), { type: 'ErrorResponse', body: { success: false, resultCode: 500, errorCode: 302, message: 'RequestHandler Not Found' } })
  // bytes that are not a Payload: an error answer, not a broken server
  t.match(await c.raw(Buffer.from([0xff, 0xff, 0xff, 0xff])), { type: 'ErrorResponse', body: { success: false, errorCode: 500 } })
  t.match(await c.request('HealthCheckRequest'), { body: { success: true } })
})

t.test("a connection's instances live as long as it does: kept past the heartbeat timeout, gone when it ends", async (t) => {
  const { server, json } = await start(t, { heartbeat: { intervalMs: 100, timeoutMs: 300, deleteTimeoutMs: 600, checkIntervalMs: 100 } })
  const c = peer(t, server.grpcPort!)
  await c.connect()
  await c.request('InstanceRequest', { serviceName: 'orders', type: 'registerInstance', instance: instance(9001) })
  await c.request('BatchInstanceRequest', { serviceName: 'orders', type: 'batchRegisterInstance', instances: [instance(9001), instance(9002)] })
  const list = () => json('GET', '/v1/ns/instance/list', { serviceName: 'orders' }) as Promise<{ hosts: Array<{ port: number; healthy: boolean }> }>
  // well past deleteTimeoutMs without any HTTP beat: the connection keeps them
  await new Promise((r) => setTimeout(r, 1000))
  t.match((await list()).hosts, [{ healthy: true }, { healthy: true }])
  t.equal((await list()).hosts.length, 2)

  c.hangUp()
  await waitFor('the instances of the closed connection to go', async () => (await list()).hosts.length === 0, 5000)
})

t.test('subscribers are pushed NotifySubscriberRequest on change; unsubscribed ones are not', async (t) => {
  // A push delay long enough that two registrations in a row fall within it on a loaded machine.
  const { server, call } = await start(t, { push: { delayMs: 300 } })
  const c = peer(t, server.grpcPort!)
  await c.connect()
  const sub = await c.request('SubscribeServiceRequest', { namespace: 'public', groupName: 'DEFAULT_GROUP', serviceName: 'orders', subscribe: true })
  t.match(sub, { type: 'SubscribeServiceResponse', body: { success: true, serviceInfo: { name: 'orders', hosts: [] } } })

  await call('POST', '/v1/ns/instance', { serviceName: 'orders', ip: '127.0.0.1', port: '9001' })
  await call('POST', '/v1/ns/instance', { serviceName: 'orders', ip: '127.0.0.1', port: '9002' })
  const push = await waitFor('a NotifySubscriberRequest', () => c.pushes.find((m) => m.type === 'NotifySubscriberRequest'), 5000)
  t.match(push.body, { module: 'naming', requestId: /^\d+$/, serviceInfo: { name: 'orders', groupName: 'DEFAULT_GROUP' } })
  await new Promise((r) => setTimeout(r, 400)) // past another push delay: a second push would be here
  const notifies = () => c.pushes.filter((m) => m.type === 'NotifySubscriberRequest')
  t.equal(notifies().length, 1, 'changes within the push delay merge into one push')
  t.same((notifies()[0]!.body.serviceInfo as { hosts: Array<{ port: number }> }).hosts.map((h) => h.port).sort(), [9001, 9002])

  // another service: not subscribed, not pushed
  await call('POST', '/v1/ns/instance', { serviceName: 'other', ip: '127.0.0.1', port: '9003' })
  t.match(await c.request('SubscribeServiceRequest', { serviceName: 'orders', subscribe: false }), { body: { success: true } })
  await call('DELETE', '/v1/ns/instance', { serviceName: 'orders', ip: '127.0.0.1', port: '9001' })
  await new Promise((r) => setTimeout(r, 500))
  t.equal(notifies().length, 1, 'no push after unsubscribing')
})

t.test('config: query, publish, listen with md5s, change pushes, remove, unlisten', async (t) => {
  const { server, call } = await start(t)
  const c = peer(t, server.grpcPort!)
  await c.connect()
  const key = { dataId: 'rules.json', group: 'FLOWTAG', tenant: '' }
  t.match(await c.request('ConfigQueryRequest', key), { type: 'ConfigQueryResponse', body: { success: false, errorCode: 300, message: 'config data not exist' } })
  t.match(await c.request('ConfigPublishRequest', { ...key, content: '  ' }), { type: 'ConfigPublishResponse', body: { success: false, errorCode: 400 } })
  t.match(await c.request('ConfigPublishRequest', { group: 'FLOWTAG', content: 'x' }), { body: { success: false, errorCode: 400 } })
  t.match(await c.request('ConfigPublishRequest', { ...key, content: '{"v":1}', additionMap: { type: 'json' } }), { type: 'ConfigPublishResponse', body: { success: true } })
  // 'public' is the empty tenant, as Nacos treats it
  const got = await c.request('ConfigQueryRequest', { ...key, tenant: 'public' })
  t.match(got, { type: 'ConfigQueryResponse', body: { success: true, content: '{"v":1}', contentType: 'json', md5: /^[0-9a-f]{32}$/ } })
  t.equal((await call('GET', '/v1/cs/configs', { dataId: 'rules.json', group: 'FLOWTAG' })).text, '{"v":1}')
  // default group and type
  await c.request('ConfigPublishRequest', { dataId: 'plain', content: 'hello' })
  t.match(await c.request('ConfigQueryRequest', { dataId: 'plain' }), { body: { content: 'hello', contentType: 'text' } })

  const md5 = got.body.md5 as string
  const listen = await c.request('ConfigBatchListenRequest', {
    listen: true,
    configListenContexts: [
      { ...key, md5 },
      { dataId: 'plain', group: 'DEFAULT_GROUP', tenant: '', md5: 'stale' }
    ]
  })
  t.match(listen, { type: 'ConfigChangeBatchListenResponse', body: { success: true } })
  t.same(listen.body.changedConfigs, [{ dataId: 'plain', group: 'DEFAULT_GROUP', tenant: '' }], 'only the stale md5 is reported changed')
  t.same((await c.request('ConfigBatchListenRequest', { configListenContexts: 'nope' })).body.changedConfigs, [])

  await call('POST', '/v1/cs/configs', { dataId: 'rules.json', group: 'FLOWTAG', content: '{"v":2}' })
  const notify = await waitFor('a ConfigChangeNotifyRequest', () => c.pushes.find((m) => m.type === 'ConfigChangeNotifyRequest'), 5000)
  t.match(notify.body, { dataId: 'rules.json', group: 'FLOWTAG', tenant: '', module: 'config', requestId: /^\d+$/ })

  t.match(await c.request('ConfigRemoveRequest', { dataId: 'plain' }), { type: 'ConfigRemoveResponse', body: { success: true } })
  t.match(await c.request('ConfigQueryRequest', { dataId: 'plain' }), { body: { errorCode: 300 } })
  const before = c.pushes.filter((m) => m.type === 'ConfigChangeNotifyRequest').length
  t.equal(before, 2, 'the removal of a listened config is pushed too')

  await c.request('ConfigBatchListenRequest', { listen: false, configListenContexts: [key] })
  await call('POST', '/v1/cs/configs', { dataId: 'rules.json', group: 'FLOWTAG', content: '{"v":3}' })
  await new Promise((r) => setTimeout(r, 150))
  t.equal(c.pushes.filter((m) => m.type === 'ConfigChangeNotifyRequest').length, before, 'no push after unlistening')
})

t.test('auth on: requests need a live accessToken header', async (t) => {
  const { server, call } = await start(t, { auth: { username: 'nacos', password: 'pw-123' } })
  const c = peer(t, server.grpcPort!)
  await c.connect()
  const reg = { serviceName: 'orders', type: 'registerInstance', instance: instance(9001) }
  t.match(await c.request('InstanceRequest', reg), { type: 'InstanceResponse', body: { success: false, errorCode: 403, message: 'user not found!' } })
  t.match(await c.request('InstanceRequest', reg, { accessToken: 'forged' }), { body: { errorCode: 403, message: 'token invalid!' } })
  t.same((await c.request('ServiceQueryRequest', { serviceName: 'orders' }, { accessToken: 'forged' })).body.serviceInfo, undefined, 'queries are guarded too')
  const token = JSON.parse((await call('POST', '/v1/auth/login', { username: 'nacos', password: 'pw-123' })).text).accessToken as string
  t.match(await c.request('InstanceRequest', reg, { accessToken: token }), { type: 'InstanceResponse', body: { success: true } })
  t.match(await c.request('ServiceQueryRequest', { serviceName: 'orders' }, { accessToken: token }), { body: { success: true, serviceInfo: { hosts: [{ port: 9001 }] } } })
  // health checks are not guarded
  t.match(await c.request('HealthCheckRequest'), { body: { success: true } })
})

t.test('auth present but disabled: no token needed', async (t) => {
  const { server } = await start(t, { auth: { username: 'nacos', password: 'pw-123', enabled: false } })
  const c = peer(t, server.grpcPort!)
  await c.connect()
  t.match(await c.request('ServiceQueryRequest', { serviceName: 'orders' }), { body: { success: true } })
})

t.test('grpc: false serves no gRPC port', async (t) => {
  const { server } = await start(t, { grpc: false })
  t.equal(server.grpcPort, undefined)
})

t.test('a fixed port whose gRPC port is taken or out of range is refused', async (t) => {
  const blocker = createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise((r) => blocker.close(r)))
  const taken = (blocker.address() as { port: number }).port
  if (taken > 1024 + 1000) {
    await t.rejects(startNacosDevServer({ port: taken - 1000, host: '127.0.0.1' }), 'the HTTP port or its + 1000 is taken')
  }
  await t.rejects(startNacosDevServer({ port: 65000, host: '127.0.0.1' }), /out of range|EADDRINUSE/)
  // the HTTP port was released: a server starts on it with gRPC off
  const again = await startNacosDevServer({ port: 65000, host: '127.0.0.1', grpc: false }).catch(() => undefined)
  if (again !== undefined) {
    t.equal(again.port, 65000)
    await again.close()
  }
})

t.test('close ends the live gRPC connections', async (t) => {
  const server = await startNacosDevServer({ port: 0, host: '127.0.0.1' })
  const c = peer(t, server.grpcPort!)
  await c.connect()
  await c.request('InstanceRequest', { serviceName: 'orders', type: 'registerInstance', instance: instance(9001) })
  await server.close()
  await t.rejects(c.request('HealthCheckRequest'))
})

t.test("message sizes as Nacos's: 10 MiB accepted, more refused with RESOURCE_EXHAUSTED; answers of any size sent", async (t) => {
  const MiB = 1024 * 1024
  const { server } = await start(t, { configMaxContent: 12 * MiB })
  const c = peer(t, server.grpcPort!, { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 })
  await c.connect()
  const content = 'x'.repeat(10 * MiB - 400) // with the rest of the request: just under 10 MiB
  const key = { dataId: 'big', group: 'G', tenant: '' }
  t.match(await c.request('ConfigPublishRequest', { ...key, content }), { body: { success: true } }, 'a message just under 10 MiB is accepted (grpc-js alone takes 4 MiB)')
  const got = await c.request('ConfigQueryRequest', key)
  t.equal((got.body.content as string).length, content.length, 'and answered whole, over 10 MiB with its fields')
  await t.rejects(c.request('ConfigPublishRequest', { ...key, content: 'x'.repeat(10 * MiB) }), { code: grpc.status.RESOURCE_EXHAUSTED, details: /larger than max \(\d+ vs 10485760\)/ })
  t.match(await c.request('HealthCheckRequest'), { body: { success: true } }, 'the connection serves on')

  const opts = await start(t, { grpcMaxMessageBytes: 2048, configMaxContent: 1000 })
  const small = peer(t, opts.server.grpcPort!)
  await small.connect()
  // Java's String.length(): UTF-16 code units, not bytes.
  t.match(await small.request('ConfigPublishRequest', { ...key, content: '中'.repeat(500) }), { body: { success: true } }, '500 characters of 3 bytes each')
  t.match(await small.request('ConfigPublishRequest', { ...key, content: 'x'.repeat(1001) }), { type: 'ConfigPublishResponse', body: { success: false, errorCode: 400, message: 'invalid content, over 1000' } })
  await t.rejects(small.request('ConfigPublishRequest', { ...key, content: 'x'.repeat(3000) }), { code: grpc.status.RESOURCE_EXHAUSTED }, 'grpcMaxMessageBytes')
})
