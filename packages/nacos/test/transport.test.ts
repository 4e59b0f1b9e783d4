// The two HTTP dialects' answer handling, including the failure answers a healthy dev server
// never gives (403, 5xx, HTML error pages, unwrapped 404s, codes in a 200): each request is
// answered from a script and recorded, so every branch of the mapping is exercised.
import t from 'tap'
import type { RawResponse, RequestSpec, ServerRequester } from '../src/http.ts'
import { httpV1, parseServiceInfo } from '../src/transport-v1.ts'
import { httpV3, isWrapped } from '../src/transport-v3.ts'
import { splitService, toInstance, type InstanceSpec } from '../src/transport.ts'

const answer = (status: number, body: unknown, headers: RawResponse['headers'] = {}): RawResponse =>
  ({ status, body: typeof body === 'string' ? body : JSON.stringify(body), headers })

/** A server that answers each request with the next scripted answer, and records the requests. */
function scripted (...answers: RawResponse[]): ServerRequester & { sent: RequestSpec[] } {
  const sent: RequestSpec[] = []
  return {
    sent,
    server: { host: '127.0.0.1', port: 8848, origin: 'http://127.0.0.1:8848' } as never,
    async request (spec) {
      sent.push(spec)
      const next = answers.shift()
      if (next === undefined) throw new Error(`unscripted request ${spec.method} ${spec.path}`)
      return next
    }
  }
}

const inst: InstanceSpec = { service: 'svc', group: 'G', ip: '10.0.0.1', port: 80, weight: 2, enabled: true, healthy: true, ephemeral: true, clusterName: 'DEFAULT', metadata: { version: 'v2' } }
const key = { dataId: 'd', group: 'G' }

t.test('v1: failures are coded, 403 as AUTH, the rest as HTTP with the status', async (t) => {
  await t.rejects(httpV1.register(scripted(answer(500, 'boom')), '', inst), { code: 'FLOWTAG_NACOS_HTTP', statusCode: 500 })
  await t.rejects(httpV1.deregister(scripted(answer(403, 'denied')), 'ns1', inst), { code: 'FLOWTAG_NACOS_AUTH' })
  await t.rejects(httpV1.update(scripted(answer(400, 'bad')), '', inst), { code: 'FLOWTAG_NACOS_HTTP' })
  await t.rejects(httpV1.beat(scripted(answer(503, 'down')), '', inst, true), { code: 'FLOWTAG_NACOS_HTTP' })
  await t.rejects(httpV1.beat(scripted(answer(200, '<html>')), '', inst, false), { code: 'FLOWTAG_NACOS_HTTP', message: /not JSON/ })
  await t.rejects(httpV1.list(scripted(answer(500, '')), '', 'svc', 'G', undefined), { code: 'FLOWTAG_NACOS_HTTP' })
  await t.rejects(httpV1.getConfig(scripted(answer(500, '')), '', key), { code: 'FLOWTAG_NACOS_HTTP' })
  await t.rejects(httpV1.publishConfig(scripted(answer(200, 'false')), '', key, 'x', undefined), { code: 'FLOWTAG_NACOS_HTTP' }, 'a 200 that says false')
  await t.rejects(httpV1.removeConfig(scripted(answer(500, '')), '', key), { code: 'FLOWTAG_NACOS_HTTP' })
  await t.rejects(httpV1.listenConfigs!(scripted(answer(500, '')), '', [{ ...key, md5: '' }], 30_000, new AbortController().signal), { code: 'FLOWTAG_NACOS_HTTP' })
})

t.test('v1: update falls back to register where the server calls it an admin API (410)', async (t) => {
  const r = scripted(answer(410, 'gone'), answer(200, 'ok'))
  await httpV1.update(r, '', inst)
  t.same(r.sent.map((s) => `${s.method} ${s.path}`), ['PUT /nacos/v1/ns/instance', 'POST /nacos/v1/ns/instance'])
})

t.test('v1: beats read the pace, light beats and a forgotten instance', async (t) => {
  const r = scripted(answer(200, { clientBeatInterval: 3000, lightBeatEnabled: true, code: 10200 }), answer(200, { code: 20404 }), answer(200, { clientBeatInterval: 'x' }))
  t.same(await httpV1.beat(r, 'public', inst, false), { intervalMs: 3000, lightBeatEnabled: true, notFound: false })
  t.same(await httpV1.beat(r, '', inst, true), { intervalMs: undefined, lightBeatEnabled: false, notFound: true })
  t.same(await httpV1.beat(r, '', inst, true), { intervalMs: undefined, lightBeatEnabled: false, notFound: false })
  t.match(JSON.parse(String(r.sent[0]!.form!.beat)), { serviceName: 'G@@svc', ip: '10.0.0.1', port: 80, metadata: { version: 'v2' } }, 'a full beat names the grouped service')
  t.equal(r.sent[1]!.form, undefined, 'a light beat has no body')
  t.equal(r.sent[0]!.query!.namespaceId, undefined, '"public" is the empty namespace id on v1')
})

t.test('v1: lists, configs and the long poll map the wire', async (t) => {
  const r = scripted(
    answer(200, { name: 'G@@svc', lastRefTime: 42, hosts: [{ ip: '10.0.0.1', port: 80, weight: 1, healthy: true, enabled: true, metadata: { version: 'v2', n: 3 } }] }),
    answer(404, 'config data not exist'),
    answer(200, 'hello', { 'config-type': 'text' }),
    answer(200, 'world'),
    answer(200, 'true'),
    answer(200, 'ok'),
    answer(200, encodeURIComponent('d\u0002G\u0001e\u0002G\u0002ns1\u0001') + '\n'),
    answer(200, '')
  )
  const snap = await httpV1.list(r, 'ns1', 'svc', 'G', { udpPort: 5555, clientIp: '127.0.0.1' })
  t.equal(snap.name, 'G@@svc')
  t.equal(snap.lastRefTime, 42)
  t.same(snap.instances[0]!.metadata, { version: 'v2', n: '3' }, 'non-string metadata is kept as JSON text')
  t.match(r.sent[0]!.query, { udpPort: 5555, clientIP: '127.0.0.1', namespaceId: 'ns1' })
  t.equal(await httpV1.getConfig(r, '', key), undefined, '404 is no config')
  t.match(await httpV1.getConfig(r, '', key), { content: 'hello', type: 'text' })
  t.match(await httpV1.getConfig(r, '', key), { content: 'world', type: undefined })
  await httpV1.publishConfig(r, 'ns1', key, 'x', 'json')
  await httpV1.removeConfig(r, 'ns1', key)
  const signal = new AbortController().signal
  t.same(await httpV1.listenConfigs!(r, 'ns1', [{ ...key, md5: 'abc' }], 30_000, signal), [{ dataId: 'd', group: 'G' }, { dataId: 'e', group: 'G' }])
  t.match(r.sent.at(-1), { headers: { 'long-pulling-timeout': '30000' }, timeoutMs: 40_000, form: { 'Listening-Configs': 'd\u0002G\u0002abc\u0002ns1\u0001' } })
  t.same(await httpV1.listenConfigs!(r, '', [{ ...key, md5: 'abc' }], 30_000, signal), [], 'an empty answer: nothing changed')
})

t.test('v1 ServiceInfo: defaults for what an answer leaves out', async (t) => {
  const before = Date.now()
  const snap = parseServiceInfo(null, 'svc', 'G')
  t.equal(snap.name, 'G@@svc')
  t.same(snap.instances, [])
  t.ok(snap.lastRefTime >= before)
  t.equal(parseServiceInfo({ name: 'bare', hosts: 'nope' }, 'svc', 'G').name, 'G@@svc', 'a name without a group is ours')
  t.match(toInstance({ ip: '1.2.3.4', port: 1, clusterName: '' }, 'svc'), { clusterName: 'DEFAULT', instanceId: '1.2.3.4#1#DEFAULT#svc' })
  t.match(toInstance(undefined, 'svc'), { ip: '', port: 0 })
  t.same(splitService('G@@svc', 'D'), ['G', 'svc'])
  t.same(splitService('svc', 'D'), ['D', 'svc'])
})

t.test('v3: wrapped answers, codes and unsupported APIs', async (t) => {
  t.ok(isWrapped('{"code":0}'))
  t.notOk(isWrapped('{"x":1}'))
  t.notOk(isWrapped('<html>'))
  await t.rejects(httpV3.register(scripted(answer(403, 'denied')), '', inst), { code: 'FLOWTAG_NACOS_AUTH' })
  await t.rejects(httpV3.register(scripted(answer(200, 'not json')), '', inst), { code: 'FLOWTAG_NACOS_HTTP', message: /not JSON/ })
  await t.rejects(httpV3.register(scripted(answer(200, 'null')), '', inst), { code: 'FLOWTAG_NACOS_HTTP' })
  await t.rejects(httpV3.register(scripted(answer(500, { code: 30000, message: 'server error' })), '', inst), { code: 'FLOWTAG_NACOS_HTTP', message: /code 30000 server error/ })
  await t.rejects(httpV3.publishConfig(scripted(answer(404, 'Not Found')), '', key, 'x', undefined), { code: 'FLOWTAG_NACOS_UNSUPPORTED' }, 'no admin API')
  await t.rejects(httpV3.removeConfig(scripted(answer(410, '')), '', key), { code: 'FLOWTAG_NACOS_UNSUPPORTED' })
  await t.rejects(httpV3.deregister(scripted(answer(404, { code: 20004, message: 'not found' })), '', inst), { code: 'FLOWTAG_NACOS_HTTP' }, 'a wrapped 404 is an answer, not a missing API')
  await t.rejects(httpV3.beat(scripted(answer(200, { code: 500, message: 'x' })), '', inst, false), { code: 'FLOWTAG_NACOS_HTTP' })
  await t.rejects(httpV3.list(scripted(answer(200, { code: 500, message: 'x' })), '', 'svc', 'G', undefined), { code: 'FLOWTAG_NACOS_HTTP' })
  await t.rejects(httpV3.getConfig(scripted(answer(200, { code: 500, message: 'x' })), '', key), { code: 'FLOWTAG_NACOS_HTTP' })
})

t.test('v3: the happy paths map the wire', async (t) => {
  const r = scripted(
    answer(200, { code: 0, data: 'ok' }),
    answer(200, { code: 0, data: 'ok' }),
    answer(200, { code: 0, data: 'ok' }),
    answer(200, { code: 21003, message: 'instance not found' }),
    answer(200, { code: 0, data: true }),
    answer(200, { code: 21008, message: 'service not found' }),
    answer(200, { code: 0, data: [{ ip: '10.0.0.1', port: 80 }] }),
    answer(200, { code: 0, data: 'not a list' }),
    answer(200, { code: 20004, message: 'config not found' }),
    answer(404, { code: 1, message: 'gone' }),
    answer(200, { code: 0, data: { content: 'c', contentType: 'json' } }),
    answer(200, { code: 0, data: { type: 'yaml' } }),
    answer(200, { code: 0, data: null }),
    answer(200, { code: 0, data: true }),
    answer(200, { code: 0, data: true })
  )
  await httpV3.register(r, '', inst)
  await httpV3.update(r, 'ns1', inst)
  await httpV3.deregister(r, '', inst)
  t.same(await httpV3.beat(r, '', inst, false), { intervalMs: undefined, lightBeatEnabled: false, notFound: true })
  t.same(await httpV3.beat(r, '', inst, false), { intervalMs: undefined, lightBeatEnabled: false, notFound: false })
  t.same((await httpV3.list(r, '', 'svc', 'G', undefined)).instances, [], 'an unknown service is an empty list')
  t.equal((await httpV3.list(r, '', 'svc', 'G', undefined)).instances[0]!.ip, '10.0.0.1')
  t.same((await httpV3.list(r, '', 'svc', 'G', undefined)).instances, [])
  t.equal(await httpV3.getConfig(r, '', key), undefined)
  t.equal(await httpV3.getConfig(r, '', key), undefined, 'a wrapped 404')
  t.match(await httpV3.getConfig(r, '', key), { content: 'c', type: 'json' })
  t.match(await httpV3.getConfig(r, '', key), { content: '', type: 'yaml' })
  t.match(await httpV3.getConfig(r, '', key), { content: '', type: undefined })
  await httpV3.publishConfig(r, 'ns1', key, 'x', 'json')
  await httpV3.removeConfig(r, '', key)
  t.equal(r.sent[0]!.form!.namespaceId, 'public', 'the empty namespace is "public" on v3')
  t.equal(r.sent[1]!.form!.namespaceId, 'ns1')
  t.equal(r.sent.at(-2)!.path, '/nacos/v3/admin/cs/config')
})
