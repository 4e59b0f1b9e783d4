// Nacos's gRPC protocol, one suite for every target: the dev server always; real Nacos when
// NACOS_GRPC_SERVER_ADDR (2.5.0), NACOS_GRPC_AUTH_SERVER_ADDR (2.5.0 with auth, user nacos /
// NACOS_GRPC_PASSWORD) or NACOS3_GRPC_SERVER_ADDR (3.1.0) are set. The official Go SDK
// (tools/go-interop, built in the run) runs against each target too.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { NacosClient, type NacosClientOptions, type ServiceChange } from '../src/index.ts'
import { runGoSdk } from './fixtures/go-sdk.ts'
import { unique as uniq, waitFor } from '@flowtag/test-kit'
import { fastDev, memoryLogger, startDev } from './fixtures/target.ts'

interface GrpcTarget {
  name: string
  addr: string
  auth?: { username: string; password: string }
  close(): Promise<void>
}

const real: Array<[string, string | undefined, boolean]> = [
  ['nacos 2.5.0', process.env.NACOS_GRPC_SERVER_ADDR, false],
  ['nacos 2.5.0 auth', process.env.NACOS_GRPC_AUTH_SERVER_ADDR, true],
  ['nacos 3.1.0', process.env.NACOS3_GRPC_SERVER_ADDR, false]
]
const targets: Array<{ name: string; start: () => Promise<GrpcTarget> }> = [
  {
    name: 'dev',
    start: async () => {
      const s = await startDev()
      return { name: 'dev', addr: s.address, close: () => s.close() }
    }
  }
]
for (const [name, addr, auth] of real) {
  if (addr === undefined || addr === '') continue
  const creds = auth ? { username: 'nacos', password: process.env.NACOS_GRPC_PASSWORD ?? 'nacos-test-pw' } : undefined
  targets.push({ name, start: async () => ({ name, addr, ...(creds === undefined ? {} : { auth: creds }), close: async () => {} }) })
}

const child = resolve(import.meta.dirname, 'fixtures/grpc-child.ts')
/** Figures for the log (and BENCHMARKS.md by hand): push latencies per target. */
const figures: string[] = []

for (const target of targets) {
  const opts = (s: GrpcTarget, extra: Partial<NacosClientOptions> = {}): NacosClientOptions => ({
    serverAddr: s.addr,
    transport: 'grpc',
    namingProtectEmpty: false,
    ...(s.auth ?? {}),
    ...extra
  })

  t.test(`${target.name}: an instance appears on connect and leaves when its process is killed`, async (t) => {
    const s = await target.start()
    t.teardown(() => s.close())
    const svc = uniq('grpc-life')
    const watcher = new NacosClient(opts(s))
    t.teardown(() => watcher.close())
    const changes: Array<ServiceChange & { at: number }> = []
    watcher.naming.subscribe(svc, (c) => changes.push({ ...c, at: Date.now() }))
    t.same(await watcher.naming.instances(svc), [])
    t.equal(watcher.server.transport, 'grpc')

    const env = { ...process.env, NACOS_ADDR: s.addr, NACOS_SERVICE: svc, NACOS_PORT_OF_INSTANCE: '4701', ...(s.auth ? { NACOS_USER: s.auth.username, NACOS_PASS: s.auth.password } : {}) }
    const proc = spawn(process.execPath, [child], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => proc.kill('SIGKILL'))
    const lines = createInterface({ input: proc.stdout })
    const registeredAt = await new Promise<number>((ok, fail) => {
      lines.on('line', (l) => l === 'registered' && ok(Date.now()))
      proc.once('exit', (code) => fail(new Error(`child exited with ${code}`)))
    })
    await waitFor('pushed add', () => changes.some((c) => c.added.some((i) => i.port === 4701)), 10_000)
    const added = changes.find((c) => c.added.some((i) => i.port === 4701))?.at ?? 0
    figures.push(`${target.name}: register -> subscriber event ${added - registeredAt} ms`)

    const killedAt = Date.now()
    proc.kill('SIGKILL')
    await once(proc, 'exit')
    await waitFor('pushed removal after kill', () => changes.some((c) => c.removed.some((i) => i.port === 4701)), 15_000)
    const removed = changes.find((c) => c.removed.some((i) => i.port === 4701))?.at ?? 0
    figures.push(`${target.name}: process killed -> removal event ${removed - killedAt} ms`)
    t.same(await watcher.naming.instances(svc), [], 'gone with its connection, no beat timeout')
  })

  t.test(`${target.name}: config query, publish, push to listeners, remove`, async (t) => {
    const s = await target.start()
    t.teardown(() => s.close())
    const reader = new NacosClient(opts(s))
    const writer = new NacosClient(opts(s))
    t.teardown(() => Promise.all([reader.close(), writer.close()]))
    const dataId = uniq('grpc-cfg')
    t.equal(await reader.config.get(dataId), undefined, 'absent config')
    const seen: Array<{ content: string | undefined; at: number }> = []
    reader.config.listen(dataId, undefined, (content) => seen.push({ content, at: Date.now() }))
    await sleep(300)
    const latencies: number[] = []
    for (let i = 0; i < 5; i++) {
      const before = seen.length
      const at = Date.now()
      await writer.config.publish(dataId, undefined, `v=${i}`, 'properties')
      await waitFor(`push of v=${i}`, () => seen.length > before && seen.at(-1)?.content === `v=${i}`, 5000)
      latencies.push((seen.at(-1)?.at ?? 0) - at)
    }
    figures.push(`${target.name}: config publish -> listener ${latencies.join(', ')} ms`)
    // Nothing polls under gRPC here (long poll 30 s): these arrived by push.
    t.ok(Math.max(...latencies) < 3000, `pushed within 3 s (${latencies.join(', ')} ms)`)
    await waitFor('readable', async () => (await writer.config.get(dataId)) === 'v=4')
    await writer.config.remove(dataId)
    await waitFor('removal pushed', () => seen.at(-1)?.content === undefined, 5000)
  })

  t.test(`${target.name}: namespaces keep instances apart`, async (t) => {
    const s = await target.start()
    t.teardown(() => s.close())
    const ns = uniq('ns')
    const svc = uniq('grpc-ns')
    const inNs = new NacosClient(opts(s, { namespace: ns }))
    const inPublic = new NacosClient(opts(s))
    t.teardown(() => Promise.all([inNs.close(), inPublic.close()]))
    await inNs.naming.register(svc, { ip: '127.0.0.1', port: 4702 })
    await waitFor('listed in its namespace', async () => (await inNs.naming.instances(svc)).length === 1)
    t.same(await inPublic.naming.instances(svc), [], 'not in public')
    await inNs.config.publish(svc, undefined, 'ns-only')
    await waitFor('config in its namespace', async () => (await inNs.config.get(svc)) === 'ns-only')
    t.equal(await inPublic.config.get(svc), undefined, 'config not in public')
  })

  t.test(`${target.name}: the official Go SDK registers, subscribes with pushes, reads and listens`, async (t) => {
    const s = await target.start()
    t.teardown(() => s.close())
    const svc = uniq('grpc-go')
    const dataId = uniq('grpc-go-cfg')
    const args = ['-addr', s.addr, '-register', svc, '-subscribe', svc, '-data-id', dataId, '-port', '9101']
    if (s.auth) args.push('-user', s.auth.username, '-password', s.auth.password)
    const go = await runGoSdk(args)
    t.teardown(() => go.stop())
    await waitFor('Go SDK ready', () => go.events.some((e) => e.event === 'ready'), 60_000)
    t.notOk(go.events.some((e) => e.event === 'error'), `no errors: ${JSON.stringify(go.events.filter((e) => e.event === 'error'))}`)
    const hasGo = (e: { event: string; instances?: unknown }) => e.event === 'instances' && Array.isArray(e.instances) && e.instances.includes('127.0.0.9:9101')
    await waitFor('Go Subscribe callback with its own instance (a push)', () => go.events.some(hasGo), 10_000)

    const node = new NacosClient(opts(s))
    t.teardown(() => node.close())
    await waitFor('Node sees the Go instance', async () => (await node.naming.instances(svc)).some((i) => i.port === 9101 && i.metadata.lane === 'go'))
    await node.naming.register(svc, { ip: '127.0.0.1', port: 4703 })
    await waitFor('Go hears of the Node instance', () => go.events.some((e) => e.event === 'instances' && Array.isArray(e.instances) && e.instances.includes('127.0.0.1:4703')), 10_000)

    // The SDK sends its first batch listen up to 5 s after ListenConfig, then polls every 5 s:
    // publish once it listens, and only an event well inside the poll period counts as a push.
    await sleep(5500)
    const at = Date.now()
    await node.config.publish(dataId, undefined, 'from-node')
    await waitFor('Go ListenConfig callback', () => go.events.some((e) => e.event === 'config' && e.content === 'from-node'), 10_000)
    const latency = (go.events.find((e) => e.event === 'config')?.t ?? 0) - at
    figures.push(`${target.name}: Go SDK config push ${latency} ms`)
    t.ok(latency < 1500, `Go SDK config callback within 1.5 s (${latency} ms), not its 5 s poll`)
  })

  if (target.name.includes('auth')) {
    t.test(`${target.name}: gRPC calls without a token are refused`, async (t) => {
      const s = await target.start()
      t.teardown(() => s.close())
      const anon = new NacosClient({ serverAddr: s.addr, transport: 'grpc' })
      t.teardown(() => anon.close())
      await t.rejects(anon.naming.register(uniq('grpc-anon'), { ip: '127.0.0.1', port: 4706 }), { code: 'FLOWTAG_NACOS_AUTH' })
    })
  }

  if (target.name === 'dev') {
    t.test('dev: reconnect and redo after a server restart: nothing lost, nothing doubled', async (t) => {
      let s = await startDev()
      const port = s.port
      t.teardown(() => s.close())
      const svc = uniq('grpc-redo')
      const logger = memoryLogger()
      const provider = new NacosClient({ serverAddr: s.address, transport: 'grpc', logger })
      const caller = new NacosClient({ serverAddr: s.address, transport: 'grpc' })
      t.teardown(() => Promise.all([provider.close(), caller.close()]))
      await provider.naming.register(svc, { ip: '127.0.0.1', port: 4704 })
      const sizes: number[] = []
      caller.naming.subscribe(svc, (c) => sizes.push(c.instances.length))
      await waitFor('listed', async () => (await caller.naming.instances(svc)).length === 1)
      const heard: Array<string | undefined> = []
      caller.config.listen('redo-cfg', undefined, (c) => heard.push(c))
      await sleep(200)

      await s.close()
      await sleep(800)
      s = await startNacosDevServer({ ...fastDev, port })
      const restartedAt = Date.now()
      const probe = new NacosClient({ serverAddr: s.address, transport: 'http-v1', namingProtectEmpty: false, namingPollIntervalMs: 100 })
      t.teardown(() => probe.close())
      await waitFor('instance registered again (redo)', async () => (await probe.naming.instances(svc)).length === 1, 10_000)
      figures.push(`dev: server restart -> instance redone ${Date.now() - restartedAt} ms`)
      t.same((await probe.naming.instances(svc)).map((i) => i.port), [4704], 'once, not doubled')
      t.notOk(sizes.includes(0), 'the caller never saw an empty list')
      await waitFor('caller no longer holds a stale list', () => caller.naming.stats().stale.length === 0, 10_000)

      const publisher = new NacosClient({ serverAddr: s.address, transport: 'grpc' })
      t.teardown(() => publisher.close())
      await sleep(300)
      await publisher.config.publish('redo-cfg', undefined, 'after-restart')
      await waitFor('config listener redone', () => heard.includes('after-restart'), 10_000)
      t.ok(logger.lines.some((l) => l.msg === 'nacos grpc connection lost'), 'the loss was logged')
    })

    t.test('dev: a lost server: reconnect to the next one in the list and redo there', async (t) => {
      const a = await startDev()
      const b = await startDev()
      t.teardown(() => Promise.all([a.close(), b.close()]))
      const svc = uniq('grpc-failover')
      const client = new NacosClient({ serverAddr: [a.address, b.address], transport: 'grpc', namingProtectEmpty: false })
      t.teardown(() => client.close())
      await client.naming.register(svc, { ip: '127.0.0.1', port: 4707 })
      client.naming.subscribe(svc, () => {})
      const onB = new NacosClient({ serverAddr: b.address, transport: 'http-v1', namingProtectEmpty: false, namingPollIntervalMs: 100 })
      t.teardown(() => onB.close())
      t.same(await onB.naming.instances(svc), [], 'only on the first server so far')
      const lostAt = Date.now()
      await a.close()
      await waitFor('redone on the second server', async () => (await onB.naming.instances(svc)).some((i) => i.port === 4707), 10_000)
      figures.push(`dev: first server lost -> instance on the second ${Date.now() - lostAt} ms`)
      t.equal(client.server.origin, `http://${b.address}`)
    })

    t.test('dev: auth: the token rides in the headers and is refreshed', async (t) => {
      const s = await startDev({ auth: { username: 'u', password: 'p', tokenTtlSeconds: 2 } })
      t.teardown(() => s.close())
      const anon = new NacosClient({ serverAddr: s.address, transport: 'grpc' })
      const user = new NacosClient({ serverAddr: s.address, transport: 'grpc', username: 'u', password: 'p' })
      t.teardown(() => Promise.all([anon.close(), user.close()]))
      await t.rejects(anon.naming.register('auth-svc', { ip: '127.0.0.1', port: 4705 }), { code: 'FLOWTAG_NACOS_AUTH' })
      await user.naming.register('auth-svc', { ip: '127.0.0.1', port: 4705 })
      await sleep(2500)
      await user.config.publish('auth-cfg', undefined, 'x')
      t.equal(await user.config.get('auth-cfg'), 'x', 'still accepted after the first token expired')
    })
  }
}

t.teardown(() => {
  if (figures.length > 0) console.error(`grpc figures:\n  ${figures.join('\n  ')}`)
})
