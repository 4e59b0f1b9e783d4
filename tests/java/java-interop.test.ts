// The official Nacos Java client as the judge: nacos-client 2.5.2 and 3.2.1 (the newest of each
// line that resolve from Maven Central; tools/java-interop; which of them where: clientsFor) and a
// flowtag client work on the same service and config keys of one server at the same time: every client sees every instance,
// and every config listener (each Java client's and flowtag's) fires for every change, whoever
// publishes it. Runs against the dev server in each `compat` mode, and against the real servers
// the environment names (as scripts/test passes them): NACOS_SERVER_ADDR (2.5.0),
// NACOS_AUTH_SERVER_ADDR (2.5.0 with auth; user nacos, NACOS_PASSWORD), NACOS3_SERVER_ADDR (3.1.0).
// Needs a JDK (17) and Maven: `pnpm --filter @flowtag/repo-tests run test:java`.
import t from 'tap'
import { NacosClient } from '@flowtag/nacos'
import { startNacosDevServer, type DevServerOptions } from '@flowtag/nacos-dev-server'
import { unique, waitFor } from '@flowtag/test-kit'
import { buildJavaClient, runJavaClient, type JavaClient } from './java-client.ts'

const JAVA_CLIENTS = ['2.5.2', '3.2.1']
/**
 * Which Java clients share flowtag's keys on a server. On 2.5 (real or dev) the 2.x one only: a 3.x
 * Java client names the default namespace `public`, which Nacos 2.5.0 keeps apart from the blank
 * one for config (seen on a real 2.5.0: neither side hears the other's changes). On a real 3.1.0 the
 * 3.x one only: with a blank-namespace listener (a 2.x Java client) on the same key, 3.1.0 can push
 * `tenant=null` to the `public` listeners walked after it, and the 3.x client drops those pushes
 * (seen here: every change missed in 2 runs of 4, with or without flowtag listening). The dev
 * server as 3.x has no such bug: both clients there.
 */
const clientsFor = (t: Target) => JAVA_CLIENTS.filter((v) => (t.generation === '2' ? v.startsWith('2.') : t.real !== true || v.startsWith('3.')))
/** A change must reach every listener by push: the Java client's own full sync comes only every 3 minutes. */
const PUSH_DEADLINE_MS = 30_000
const CHANGES = 4

interface Target {
  name: string
  addr: string
  generation: '2' | '3'
  real?: boolean
  user?: string
  password?: string
}

const targets: Array<Target & { dev?: DevServerOptions }> = [
  { name: 'dev server as 2.5', addr: '', generation: '2', dev: { compat: '2.5' } },
  { name: 'dev server as 3.1', addr: '', generation: '3', dev: { compat: '3.1' } },
  { name: 'dev server as 3.3 (client auth on)', addr: '', generation: '3', dev: { compat: '3.3' }, user: 'nacos', password: 'nacos' }
]
const real = (env: string, name: string, generation: '2' | '3', auth = false) => {
  const addr = process.env[env]
  if (addr === undefined || addr === '') return
  targets.push({ name: `real ${name} (${env})`, addr, generation, real: true, ...(auth ? { user: 'nacos', password: process.env.NACOS_PASSWORD ?? 'nacos-test-pw' } : {}) })
}
real('NACOS_SERVER_ADDR', 'Nacos 2.5.0', '2')
real('NACOS_AUTH_SERVER_ADDR', 'Nacos 2.5.0 with auth', '2', true)
real('NACOS3_SERVER_ADDR', 'Nacos 3.1.0', '3')
if (targets.length === 3) process.stderr.write('NOTICE: no real Nacos named (NACOS_SERVER_ADDR, NACOS3_SERVER_ADDR, ...): the Java client is checked against the dev server only\n')

// Both builds up front, side by side (Maven and javac, cached between runs).
await Promise.all(JAVA_CLIENTS.map((v) => buildJavaClient(v)))

for (const target of targets) {
  t.test(target.name, async (t) => {
    let addr = target.addr
    if (target.dev !== undefined) {
      const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', ...target.dev })
      t.teardown(() => dev.close())
      addr = dev.address
    }
    const service = unique('java-svc')
    const dataId = unique('java-cfg')
    const creds = target.user === undefined ? {} : { username: target.user, password: target.password! }

    // flowtag: registers, watches the service, listens to the config.
    const flowtag = new NacosClient({ serverAddr: addr, transport: 'auto', ...creds })
    t.teardown(() => flowtag.close())
    const flowtagLists: string[][] = []
    const flowtagConfigs: Array<string | undefined> = []
    flowtag.naming.subscribe(service, (c) => flowtagLists.push(c.instances.map((i) => `${i.ip}:${i.port}`).sort()))
    flowtag.config.listen(dataId, undefined, (content) => flowtagConfigs.push(content))
    await flowtag.naming.register(service, { ip: '127.0.0.1', port: 9700, metadata: { version: 'stable' } })

    // The Java clients, side by side: each registers its own instance and does the same.
    const java: JavaClient[] = []
    t.teardown(() => {
      for (const j of java) j.stop()
    })
    for (const [n, version] of clientsFor(target).entries()) {
      java.push(await runJavaClient(version, {
        addr,
        user: target.user,
        password: target.password,
        register: service,
        ip: '127.0.0.1',
        port: 9701 + n,
        subscribe: service,
        dataId
      }))
    }
    for (const j of java) {
      await waitFor(`Java client ${j.version} ready`, () => j.events.some((e) => e.event === 'ready') || j.proc.exitCode !== null, 120_000)
      t.equal(j.proc.exitCode, null, `Java client ${j.version} runs`)
    }

    const everyone = ['127.0.0.1:9700', ...java.map((_, n) => `127.0.0.1:${9701 + n}`)]
    const javaHosts = (j: JavaClient) => (j.events.filter((e) => e.event === 'instances').at(-1)?.hosts as string[] | undefined)?.slice().sort()
    for (const j of java) {
      await waitFor(`Java ${j.version} to see every instance`, () => JSON.stringify(javaHosts(j)) === JSON.stringify(everyone), 60_000)
      t.pass(`Java ${j.version}'s subscription sees flowtag's instance and every Java client's`)
    }
    await waitFor('flowtag to see every instance', () => JSON.stringify(flowtagLists.at(-1)) === JSON.stringify(everyone), 60_000)
    t.pass("flowtag's subscription sees every Java client's instance")

    // Config: flowtag and the newest Java client publish in turn; every listener hears every change.
    const javaConfigs = (j: JavaClient) => j.events.filter((e) => e.event === 'config' && e.dataId === dataId).map((e) => e.content)
    const listeners: Array<{ name: string; seen: () => unknown[] }> = [
      { name: 'flowtag', seen: () => flowtagConfigs },
      ...java.map((j) => ({ name: `Java ${j.version}`, seen: () => javaConfigs(j) }))
    ]
    const newest = java.at(-1)!
    for (let i = 1; i <= CHANGES; i++) {
      const content = `change-${i}-${dataId}`
      if (i % 2 === 1) await flowtag.config.publish(dataId, undefined, content)
      else {
        const published = () => newest.events.filter((e) => e.event === 'published').length
        const before = published()
        newest.send(`publish ${dataId} ${content}`)
        await waitFor(`Java ${newest.version} to publish`, () => published() > before, 30_000)
      }
      const missing = async () => {
        const late = listeners.filter((l) => !l.seen().includes(content)).map((l) => l.name)
        return late.length === 0 ? true : undefined
      }
      const got = await waitFor(`change ${i} to reach every listener`, missing, PUSH_DEADLINE_MS).catch(() => false)
      const late = listeners.filter((l) => !l.seen().includes(content)).map((l) => l.name)
      t.ok(got, `change ${i} (published by ${i % 2 === 1 ? 'flowtag' : `Java ${newest.version}`}) reached every listener${late.length > 0 ? `; missed by ${late.join(', ')}` : ''}`)
    }
    for (const j of java) {
      const errors = j.events.filter((e) => e.event === 'error')
      t.same(errors, [], `Java ${j.version}: no errors`)
    }

    // The newest Java client leaves: it deregisters, and the others see it go.
    await newest.quit()
    const rest = everyone.filter((a) => a !== `127.0.0.1:${9700 + java.length}`)
    await waitFor('flowtag to see the Java client leave', () => JSON.stringify(flowtagLists.at(-1)) === JSON.stringify(rest), 60_000)
    for (const j of java.slice(0, -1)) await waitFor(`Java ${j.version} to see it leave`, () => JSON.stringify(javaHosts(j)) === JSON.stringify(rest), 60_000)
    t.pass('a Java client that leaves is gone for flowtag and the other Java clients')
    for (const j of java.slice(0, -1)) await j.quit()
  })
}
