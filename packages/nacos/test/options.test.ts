import t from 'tap'
import { NacosClient } from '../src/index.ts'
import { resolveOptions } from '../src/options.ts'

t.test('server addresses: list, comma string, scheme and default port', async (t) => {
  const a = resolveOptions({ serverAddr: 'http://10.0.0.1:8848, nacos.local ,127.0.0.1:9000' })
  t.same(
    (a.serverAddr ?? []).map((s) => s.origin),
    ['http://10.0.0.1:8848', 'http://nacos.local:8848', 'http://127.0.0.1:9000']
  )
  const b = resolveOptions({ serverAddr: ['127.0.0.1:1', 'https://h:2/'] })
  t.same((b.serverAddr ?? []).map((s) => [s.origin, s.host, s.port]), [['http://127.0.0.1:1', '127.0.0.1', 1], ['https://h:2', 'h', 2]])
  t.equal(b.group, 'DEFAULT_GROUP')
  t.equal(b.transport, 'auto', 'gRPC first by default (then HTTP v3, then v1); http is opt-in')
  t.equal(b.namespace, '')
  t.equal(b.namingProtectEmpty, true, 'empty protection is on by default')
  t.equal(b.recoveryProbeMs, 500)
  t.equal(b.grpcMaxMessageBytes, 10 * 1024 * 1024, "gRPC messages up to Nacos's 10 MiB")
  t.equal(resolveOptions({ endpoint: 'addr.local' }).endpoint?.origin, 'http://addr.local:8080', 'address server default port')
})

const bad: Array<[string, Record<string, unknown>]> = [
  ['serverAddr', {}],
  ['serverAddr', { serverAddr: '' }],
  ['serverAddr', { serverAddr: 'ftp://x:1' }],
  ['serverAddr', { serverAddr: '127.0.0.1:70000' }],
  ['serverAddr', { serverAddr: [] }],
  ['namespace', { serverAddr: 'h:1', namespace: 'a b' }],
  ['group', { serverAddr: 'h:1', group: 'a/b' }],
  ['password', { serverAddr: 'h:1', username: 'u' }],
  ['username', { serverAddr: 'h:1', password: 'p' }],
  ['secretKey', { serverAddr: 'h:1', accessKey: 'ak' }],
  ['timeoutMs', { serverAddr: 'h:1', timeoutMs: -1 }],
  ['timeoutMs', { serverAddr: 'h:1', timeoutMs: '5' }],
  ['logger', { serverAddr: 'h:1', logger: { info () {} } }],
  ['transport', { serverAddr: 'h:1', transport: 'udp' }],
  ['loadCacheAtStart', { serverAddr: 'h:1', loadCacheAtStart: 'yes' }],
  ['configLongPollTimeoutMs', { serverAddr: 'h:1', configLongPollTimeoutMs: 5 }],
  ['serverList', { serverAddr: 'h:1', serverList: 'h:2' }],
  ['serverAddr', { serverAddr: 'h:1', endpoint: 'addr:8080' }],
  ['endpoint', { endpoint: 'not a host' }],
  ['endpointRefreshMs', { endpoint: 'addr', endpointRefreshMs: 10 }],
  ['namingProtectEmpty', { serverAddr: 'h:1', namingProtectEmpty: 'yes' }],
  ['recoveryProbeMs', { serverAddr: 'h:1', recoveryProbeMs: 0 }],
  ['grpcMaxMessageBytes', { serverAddr: 'h:1', grpcMaxMessageBytes: 1000 }],
  ['grpcMaxMessageBytes', { serverAddr: 'h:1', grpcMaxMessageBytes: '10MB' }]
]

for (const [field, options] of bad) {
  t.test(`bad option ${field}: ${JSON.stringify(options)}`, async (t) => {
    t.throws(() => new NacosClient(options as never), { code: 'FLOWTAG_NACOS_BAD_OPTION', message: new RegExp(`"${field}"`) })
  })
}

t.test('the password never shows in the client options or errors', async (t) => {
  const c = new NacosClient({ serverAddr: '127.0.0.1:1', username: 'u', password: 's3cret-pw' })
  t.notMatch(JSON.stringify(c.options), /s3cret-pw/)
  t.equal((c.options as Record<string, unknown>).password, undefined)
  await c.close()
  const err = (() => {
    try {
      new NacosClient({ serverAddr: '127.0.0.1:1', username: 'u', password: 's3cret-pw', timeoutMs: 0 })
    } catch (e) {
      return e as Error
    }
  })()
  t.match(err?.message, /timeoutMs/)
  t.notMatch(err?.message, /s3cret-pw/)
})

t.test('calls validate their arguments', async (t) => {
  const c = new NacosClient({ serverAddr: '127.0.0.1:1' })
  t.teardown(() => c.close())
  await t.rejects(c.naming.register('svc', { ip: 'not-an-ip', port: 1 }), { code: 'FLOWTAG_NACOS_BAD_ARGUMENT', message: /instance\.ip/ })
  await t.rejects(c.naming.register('svc', { ip: '127.0.0.1', port: 0 }), { code: 'FLOWTAG_NACOS_BAD_ARGUMENT', message: /instance\.port/ })
  await t.rejects(c.naming.register('has space', { ip: '127.0.0.1', port: 1 }), { code: 'FLOWTAG_NACOS_BAD_ARGUMENT', message: /"service"/ })
  await t.rejects(c.config.get('bad/id'), { code: 'FLOWTAG_NACOS_BAD_ARGUMENT', message: /dataId/ })
  await t.rejects(c.config.publish('ok', 'G', '  '), { code: 'FLOWTAG_NACOS_BAD_ARGUMENT', message: /content/ })
  await t.rejects(c.config.publish('ok', 'G', 'x', 'exe'), { code: 'FLOWTAG_NACOS_BAD_ARGUMENT', message: /type/ })
  t.throws(() => c.config.listen('ok', 'G', 'nope' as never), { code: 'FLOWTAG_NACOS_BAD_ARGUMENT' })
})

t.test('a serverAddr of the wrong type says what it takes, not "Invalid input"', async (t) => {
  t.throws(() => resolveOptions({ serverAddr: 8848 as never }), { code: 'FLOWTAG_NACOS_BAD_OPTION', field: 'serverAddr', message: /"serverAddr": expected "host:port", a comma-separated list of them, or an array of them$/ })
  t.throws(() => resolveOptions({ serverAddr: ['127.0.0.1:8848', 2] as never }), { field: 'serverAddr.1', message: /expected string, received number/ })
})
