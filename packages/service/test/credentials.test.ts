// The preset takes Nacos credentials from NACOS_USERNAME/NACOS_PASSWORD when its options give
// none, and labels its gRPC connections with the service, version and env.
import { NacosClient } from '@flowtag/nacos'
import Fastify from 'fastify'
import t from 'tap'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { fastClient, startDev, testerRules } from './fixtures/nacos.ts'
import { waitFor } from '@flowtag/test-kit'

const auth = { username: 'nacos', password: 'svc-pa55-word' }
const RULES = { dataId: 'rules.json', group: 'FLOWTAG' }

t.test('credentials from the environment: the service registers and reads its rules on a Nacos with auth on', async (t) => {
  const dev = await startDev({ auth })
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, ...auth })
  t.teardown(() => admin.close())
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify(testerRules), 'json')

  process.env.NACOS_USERNAME = auth.username
  process.env.NACOS_PASSWORD = auth.password
  t.teardown(() => {
    delete process.env.NACOS_USERNAME
    delete process.env.NACOS_PASSWORD
  })
  const app = Fastify()
  await app.register(fastifyFlowTagService, { service: 'env-user', version: 'v2', nacos: { serverAddr: dev.address, ...fastClient }, rules: RULES, registration: { env: 'staging' } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  t.equal(app.flowtag.rules?.version, 1, 'rules read with the token')
  await waitFor('registered', async () => (await admin.naming.instances('env-user')).length === 1)
  t.match(app.flowtag.nacos.options, { username: 'nacos', appName: 'env-user', labels: { version: 'v2', env: 'staging' } })
  t.notOk('password' in app.flowtag.nacos.options, 'the password is not exposed')
})

t.test('half a credential pair in the environment is a coded error naming the variable', async (t) => {
  process.env.NACOS_USERNAME = 'nacos'
  t.teardown(() => {
    delete process.env.NACOS_USERNAME
  })
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(fastifyFlowTagService, { service: 'env-half', nacos: { serverAddr: '127.0.0.1:1' }, rules: { version: 1, services: {}, rules: [], default: 'v1' } })
    await app.ready()
  }, {
    code: 'FLOWTAG_NACOS_BAD_OPTION',
    message: /NACOS_PASSWORD/
  })
})

t.test('a wrong password at start is said as a refusal, once, not as "Nacos unreachable"', async (t) => {
  const dev = await startDev({ auth })
  t.teardown(() => dev.close())
  const lines: Array<{ level: string, msg: string }> = []
  const logger = {
    trace () {},
    debug () {},
    info () {},
    fatal () {},
    level: 'info',
    silent () {},
    warn (_o: unknown, msg?: string) { lines.push({ level: 'warn', msg: msg ?? '' }) },
    error (_o: unknown, msg?: string) { lines.push({ level: 'error', msg: msg ?? '' }) },
    child () { return logger }
  }
  const app = Fastify({ loggerInstance: logger as never })
  await app.register(fastifyFlowTagService, { service: 'wrong-pw', version: 'v1', nacos: { serverAddr: dev.address, ...fastClient, username: 'nacos', password: 'wrong' } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  await waitFor('the refusal said', () => lines.some((l) => /refused this service's credentials \(refused\)/.test(l.msg)))
  t.equal(lines.filter((l) => /refused this service's credentials/.test(l.msg)).length, 1, 'said once')
  t.notOk(lines.some((l) => /Nacos unreachable at start/.test(l.msg)), 'not called unreachable')
})
