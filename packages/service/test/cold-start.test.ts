// Disk snapshots (cacheDir) and signed hops, end to end on loopback with the Nacos dev server.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { NacosClient } from '@flowtag/nacos'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { fastifyFlowTagService } from '../src/fastify.ts'
import { waitFor } from '@flowtag/test-kit'
import { fastClient, startDev, testerRules } from './fixtures/nacos.ts'

const RULES = { dataId: 'rules.json', group: 'FLOWTAG' }
const keys = [{ id: 'k1', secret: 'a-secret-of-sixteen-or-more' }]

function logSink (): { lines: string[], stream: Writable } {
  const lines: string[] = []
  return { lines, stream: new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } }) }
}

async function userService (t: { teardown(fn: () => unknown): void }, nacos: object, extra: object = {}): Promise<FastifyInstance> {
  const app = Fastify({ return503OnClosing: false })
  await app.register(fastifyFlowTagService, { service: 'user-service', version: 'v1', nacos: nacos as never, cacheDir: false, ...extra })
  app.get('/who', async (request) => ({ lane: request.flow.tag ?? null }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return app
}

async function edge (nacos: object, cacheDir: string | false, log: Writable, extra: object = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: { stream: log } })
  await app.register(fastifyFlowTagService, { service: 'gateway', mode: 'edge', nacos: nacos as never, rules: RULES, registration: false, cacheDir, outbound: { stableLane: 'v1' }, ...extra })
  app.get('/api', async () => {
    const res = await app.flowtag.fetch('http://user-service/who')
    return { status: res.status, body: await res.json() }
  })
  await app.ready()
  return app
}

t.test('a process started while Nacos is down serves from its last disk snapshot and says how old it is', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-cold-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dev = await startDev()
  const admin = new NacosClient({ serverAddr: dev.address })
  t.teardown(() => admin.close())
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify(testerRules), 'json')
  const nacos = { serverAddr: dev.address, ...fastClient, timeoutMs: 500 }
  await userService(t, nacos)
  await waitFor('user-service registered', async () => (await admin.naming.instances('user-service')).length === 1)

  // A first run fills the snapshot folder.
  const first = await edge(nacos, dir, logSink().stream)
  t.equal(first.flowtag.cacheDir, dir)
  t.same((await first.inject({ url: '/api', headers: { 'x-tester': 'true' } })).json(), { status: 200, body: { lane: 'v2' } })
  await first.close()
  await dev.close()

  // Nacos is gone: a new process on the same folder still routes, with the rules it had.
  const log = logSink()
  const cold = await edge(nacos, dir, log.stream)
  t.teardown(() => cold.close())
  t.equal(cold.flowtag.rules?.version, 1, 'the RuleSet from the cache file is in force')
  let failed = 0
  for (let i = 0; i < 20; i++) {
    const r = (await cold.inject({ url: '/api', headers: i % 2 === 0 ? { 'x-tester': 'true' } : {} })).json()
    if (r.status !== 200 || r.body.lane !== (i % 2 === 0 ? 'v2' : 'v1')) failed++
  }
  t.equal(failed, 0, '0 failed or misrouted requests while Nacos is down')
  await waitFor('the cold-start notice', () => log.lines.some((l) => l.includes('serving from the disk snapshot')), 5000)
  const notices = log.lines.filter((l) => l.includes('Nacos unreachable at start'))
  t.equal(notices.length, 1, 'said once')
  const snapshot = JSON.parse(notices[0]!).snapshot
  t.match(snapshot, { rulesVersion: 1, rulesAgeS: Number, instancesAgeS: Number, services: 1 })
  t.ok(snapshot.rulesAgeS >= 0 && snapshot.rulesAgeS < 60, `rules snapshot ${snapshot.rulesAgeS} s old`)
  t.match(JSON.parse(notices[0]!).msg, /\(rules \d+ s old, instances \d+ s old\)$/, 'the ages in the message')

  // Without a RuleSet of its own, a process on the same folder says so in words, not "rules - s".
  const plainLog = logSink()
  const plain = Fastify({ logger: { stream: plainLog.stream } })
  await plain.register(fastifyFlowTagService, { service: 'gateway', nacos: nacos as never, registration: false, cacheDir: dir })
  await plain.ready()
  t.teardown(() => plain.close())
  await waitFor('the notice without rules', () => plainLog.lines.some((l) => l.includes('Nacos unreachable at start')), 5000)
  t.match(JSON.parse(plainLog.lines.find((l) => l.includes('Nacos unreachable at start'))!).msg, /\(no rules snapshot, instances \d+ s old\)$/)

  // The same folder, another namespace or another cluster: none of these snapshots is theirs.
  for (const [what, other] of [['namespace', { ...nacos, namespace: 'other' }], ['cluster', { ...nacos, serverAddr: '127.0.0.1:1' }]] as const) {
    const otherLog = logSink()
    const app = await edge(other, dir, otherLog.stream, { rules: { ...RULES, startTimeoutMs: 200 } })
    t.teardown(() => app.close())
    t.equal(app.flowtag.rules?.version, undefined, `another ${what}: no RuleSet from the first one's cache`)
    await waitFor(`another ${what}: the notice`, () => otherLog.lines.some((l) => l.includes('Nacos unreachable at start')), 5000)
    t.ok(otherLog.lines.some((l) => l.includes('no disk snapshot; waiting for Nacos')), `another ${what}: no snapshot of the first one's is served`)
    // user-service still listens: had the first one's instance snapshot been read, this call would reach it
    t.not((await app.inject({ url: '/api' })).statusCode, 200, `another ${what}: no instances of the first one's`)
  }
})

t.test('cacheDir false keeps nothing on disk; an unwritable folder turns snapshots off with a warning', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const nacos = { serverAddr: dev.address, ...fastClient }
  const off = await edge(nacos, false, logSink().stream)
  t.teardown(() => off.close())
  t.equal(off.flowtag.cacheDir, undefined)
  t.equal((off.flowtag.rules as { cacheFile?: string }).cacheFile, undefined)
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-cold-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'a-file'), '')
  const log = logSink()
  const bad = await edge(nacos, join(dir, 'a-file', 'cache'), log.stream)
  t.teardown(() => bad.close())
  t.equal(bad.flowtag.cacheDir, undefined)
  t.ok(log.lines.some((l) => l.includes('cannot create the cache folder')))
})

t.test('signing: hops carry signed tags; a service honours only those, never a forged plain tag or baggage', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address })
  t.teardown(() => admin.close())
  await admin.config.publish(RULES.dataId, RULES.group, JSON.stringify(testerRules), 'json')
  const nacos = { serverAddr: dev.address, ...fastClient }
  const svc = await userService(t, nacos, { signing: { keys } })
  await waitFor('user-service registered', async () => (await admin.naming.instances('user-service')).length === 1)
  const gw = await edge(nacos, false, logSink().stream, { signing: { keys } })
  t.teardown(() => gw.close())

  t.same((await gw.inject({ url: '/api', headers: { 'x-tester': 'true' } })).json(), { status: 200, body: { lane: 'v2' } }, 'the signed lane arrives')
  t.same((await gw.inject('/api')).json(), { status: 200, body: { lane: 'v1' } })
  t.same((await svc.inject({ url: '/who', headers: { 'x-flow-tag': 'v2' } })).json(), { lane: null }, 'a forged plain tag is ignored')
  t.same((await svc.inject({ url: '/who', headers: { baggage: 'flowtag.lane=v2' } })).json(), { lane: null }, 'so is a lane in baggage')
  t.same((await svc.inject({ url: '/who', headers: { 'x-flow-tag': 'v2~9999999999~k1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } })).json(), { lane: null }, 'and a token with a bad signature')
  t.match(svc.flowtag.tagger.stats, { ignored: 1, dropped: 1, signed: 2 }, 'counted: the plain tag ignored, the bad token dropped')

  // Without signing on the caller, the signed service refuses its plain tags: both sides need the key.
  const plain = await edge(nacos, false, logSink().stream)
  t.teardown(() => plain.close())
  t.same((await plain.inject({ url: '/api', headers: { 'x-tester': 'true' } })).json(), { status: 200, body: { lane: null } })
})

t.test('bad signing options name the field', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const app = Fastify()
  await t.rejects(async () => {
    await app.register(fastifyFlowTagService, { service: 's', nacos: { serverAddr: dev.address }, cacheDir: false, signing: { keys: [{ id: 'k', secret: 'short' }] } })
    await app.ready()
  }, /invalid option "signing\.keys\.0\.secret"/)
})
