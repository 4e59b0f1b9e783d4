// Credentials from the environment and the client options a preset builds (env.ts).
import t from 'tap'
import { credentialsFromEnv, NacosClient, presetClientOptions } from '../src/index.ts'
import { startDev } from './fixtures/target.ts'

t.test('credentialsFromEnv: whole pairs only, options win, empty is unset', async (t) => {
  t.same(credentialsFromEnv({}), {})
  t.same(credentialsFromEnv({ NACOS_USERNAME: 'u', NACOS_PASSWORD: 'p' }), { username: 'u', password: 'p' })
  t.same(credentialsFromEnv({ NACOS_ACCESS_KEY: 'ak', NACOS_SECRET_KEY: 'sk' }), { accessKey: 'ak', secretKey: 'sk' })
  t.same(credentialsFromEnv({ NACOS_USERNAME: '', NACOS_PASSWORD: '' }), {}, 'empty values are unset')
  t.same(credentialsFromEnv({ NACOS_USERNAME: 'u', NACOS_PASSWORD: 'p' }, { username: 'me', password: 'mine' }), {}, 'options win whole')
  t.same(credentialsFromEnv({ NACOS_USERNAME: 'u', NACOS_PASSWORD: 'p', NACOS_ACCESS_KEY: 'ak', NACOS_SECRET_KEY: 'sk' }, { accessKey: 'a2', secretKey: 's2' }), { username: 'u', password: 'p' })
  t.throws(() => credentialsFromEnv({ NACOS_USERNAME: 'u' }), { code: 'FLOWTAG_NACOS_BAD_OPTION', message: /NACOS_PASSWORD is not set while NACOS_USERNAME is/ })
  t.throws(() => credentialsFromEnv({ NACOS_SECRET_KEY: 's' }), { code: 'FLOWTAG_NACOS_BAD_OPTION', message: /NACOS_ACCESS_KEY/ })
})

t.test('presetClientOptions: env credentials, appName from the service, version/env labels under the options\' own', async (t) => {
  const env = { NACOS_USERNAME: 'u', NACOS_PASSWORD: 'p' }
  t.same(presetClientOptions({ serverAddr: 'h:1' }, { service: 'orders', version: 'v2', env: 'prod' }, env), {
    serverAddr: 'h:1',
    username: 'u',
    password: 'p',
    appName: 'orders',
    labels: { version: 'v2', env: 'prod' }
  })
  t.same(presetClientOptions({ serverAddr: 'h:1', appName: 'mine', labels: { version: 'lane-x' } }, { service: 'orders', version: 'v2' }, {}), {
    serverAddr: 'h:1',
    appName: 'mine',
    labels: { version: 'lane-x' }
  }, 'options win')
})

t.test('a client built by presetClientOptions logs in with the environment\'s credentials (HTTP and gRPC)', async (t) => {
  const auth = { username: 'nacos', password: 'env-pa55-word' }
  const dev = await startDev({ auth })
  t.teardown(() => dev.close())
  for (const transport of ['auto', 'http'] as const) {
    const c = new NacosClient(presetClientOptions({ serverAddr: dev.address, transport }, { service: 'env-svc' }, { NACOS_USERNAME: auth.username, NACOS_PASSWORD: auth.password }))
    t.teardown(() => c.close())
    await c.config.publish('env-cfg', 'G', transport)
    t.equal(await c.config.get('env-cfg', 'G'), transport)
    t.equal(c.server.transport, transport === 'auto' ? 'grpc' : 'http-v1')
  }
})
