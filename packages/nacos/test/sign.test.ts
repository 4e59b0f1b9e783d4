import { createHmac } from 'node:crypto'
import t from 'tap'
import { NacosClient } from '../src/index.ts'
import { sign } from '../src/sign.ts'
import { recordingProxy } from './fixtures/recording-proxy.ts'
import { startDev } from './fixtures/target.ts'

const expected = (data: string) => createHmac('sha1', 'sk').update(data).digest('base64')

t.test('what each signature covers', async (t) => {
  t.same(sign({ kind: 'config', tenant: 'ns1', group: 'G' }, 'ak', 'sk', 1000).headers, {
    'Spas-AccessKey': 'ak',
    timeStamp: '1000',
    'Spas-Signature': expected('ns1+G+1000')
  })
  t.equal(sign({ kind: 'config', tenant: undefined, group: 'G' }, 'ak', 'sk', 1000).headers['Spas-Signature'], expected('G+1000'))
  t.equal(sign({ kind: 'config', tenant: undefined, group: undefined }, 'ak', 'sk', 1000).headers['Spas-Signature'], expected('1000'))
  t.same(sign({ kind: 'naming', serviceName: 'G@@s' }, 'ak', 'sk', 1000).query, { ak: 'ak', data: '1000@@G@@s', signature: expected('1000@@G@@s') })
})

t.test('requests carry the signature and never the secret', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const proxy = await recordingProxy(dev.url)
  t.teardown(() => proxy.close())
  const c = new NacosClient({ serverAddr: `127.0.0.1:${proxy.port}`, accessKey: 'my-ak', secretKey: 'my-very-secret-sk', transport: 'http-v1' })
  t.teardown(() => c.close())
  await c.config.publish('signed', 'G', 'x')
  await c.naming.register('signed', { ip: '127.0.0.1', port: 4800 })
  const cfg = proxy.seen.find((r) => r.url.startsWith('/nacos/v1/cs/configs'))
  t.equal(cfg?.headers['spas-accesskey'], 'my-ak')
  t.match(cfg?.headers['spas-signature'], /^[A-Za-z0-9+/]+=*$/)
  const reg = proxy.seen.find((r) => r.method === 'POST' && r.url.startsWith('/nacos/v1/ns/instance'))
  const q = new URL(reg?.url ?? '/', 'http://x').searchParams
  t.equal(q.get('ak'), 'my-ak')
  t.match(q.get('data'), /^\d+@@DEFAULT_GROUP@@signed$/)
  t.notOk(JSON.stringify(proxy.seen).includes('my-very-secret-sk'))
})
