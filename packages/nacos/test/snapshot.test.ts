import { join } from 'node:path'
import t from 'tap'
import { NacosClient, NacosError } from '../src/index.ts'
import { startDev } from './fixtures/target.ts'
import { waitFor } from '@flowtag/test-kit'

t.test('start and keep routing from the disk snapshot while Nacos is down', async (t) => {
  const cacheDir = join(t.testdir(), 'cache')
  const dev = await startDev()
  let devOpen = true
  t.teardown(() => (devOpen ? dev.close() : undefined))
  const addr = `127.0.0.1:${dev.port}`
  const writer = new NacosClient({ serverAddr: addr, cacheDir, namingPollIntervalMs: 100 })
  await writer.naming.register('snap', { ip: '127.0.0.1', port: 4500, metadata: { version: 'v2' } })
  await waitFor('instance listed', async () => (await writer.naming.instances('snap')).length === 1, 15_000)
  await writer.config.publish('rules', 'G', '{"rules":[]}')
  t.equal(await writer.config.get('rules', 'G'), '{"rules":[]}')
  t.equal(await writer.config.get('absent', 'G'), undefined)

  await dev.close()
  devOpen = false
  // The running client keeps its in-memory list.
  t.same((await writer.naming.instances('snap')).map((i) => i.port), [4500])
  await writer.close()

  // A new process, Nacos down: loadCacheAtStart serves the snapshot at once...
  const early = new NacosClient({ serverAddr: addr, cacheDir, loadCacheAtStart: true, timeoutMs: 500 })
  t.teardown(() => early.close())
  t.match(await early.naming.instances('snap'), [{ port: 4500, metadata: { version: 'v2' } }])
  // ...and without it the snapshot is the fallback once the server fails.
  const late = new NacosClient({ serverAddr: addr, cacheDir, timeoutMs: 500 })
  t.teardown(() => late.close())
  t.match(await late.naming.instances('snap'), [{ port: 4500 }])
  t.equal(await late.config.get('rules', 'G'), '{"rules":[]}')
  t.equal(await late.config.get('absent', 'G'), undefined, 'known-absent is remembered too')
  const seen: Array<string | undefined> = []
  late.config.listen('rules', 'G', (c) => seen.push(c))
  const listenOnly = new NacosClient({ serverAddr: addr, cacheDir, timeoutMs: 500 })
  t.teardown(() => listenOnly.close())
  const fromDisk: Array<string | undefined> = []
  listenOnly.config.listen('rules', 'G', (c) => fromDisk.push(c))
  await waitFor('listener fed from the snapshot', () => fromDisk.length === 1, 15_000)
  t.same(fromDisk, ['{"rules":[]}'])
  t.same(seen, [], 'no event when the snapshot equals what the client already had')

  // No snapshot, no server: a clear error.
  const bare = new NacosClient({ serverAddr: addr, timeoutMs: 500 })
  t.teardown(() => bare.close())
  await t.rejects(bare.naming.instances('snap'), { code: 'FLOWTAG_NACOS_UNREACHABLE' })
  await t.rejects(bare.config.get('rules', 'G'), { code: 'FLOWTAG_NACOS_UNREACHABLE' })

  // Nacos back on the same port: the server's answer replaces the snapshot.
  const back = await startDev({ port: dev.port })
  t.teardown(() => back.close())
  const revived = new NacosClient({ serverAddr: addr, cacheDir, loadCacheAtStart: true, namingPollIntervalMs: 100 })
  t.teardown(() => revived.close())
  t.equal((await revived.naming.instances('snap')).length, 1, 'snapshot first')
  // The restarted server lists nobody: empty protection holds the snapshot's list, marked stale.
  await waitFor('empty answer held', () => revived.naming.stats().emptyHeld > 0, 15_000)
  t.match(await revived.naming.instances('snap'), [{ port: 4500 }], 'the held list is served')
  t.same(revived.naming.stats().stale, ['DEFAULT_GROUP@@snap'])
  // Without protection the server's (empty) answer replaces the snapshot.
  const unprotected = new NacosClient({ serverAddr: addr, cacheDir, loadCacheAtStart: true, namingPollIntervalMs: 100, namingProtectEmpty: false })
  t.teardown(() => unprotected.close())
  t.equal((await unprotected.naming.instances('snap')).length, 1, 'snapshot first')
  await waitFor('live list (empty) wins', async () => (await unprotected.naming.instances('snap')).length === 0, 15_000)
})

t.test('clusters and namespaces sharing a cacheDir keep apart: each reads only its own snapshots', async (t) => {
  const cacheDir = join(t.testdir(), 'cache')
  const a = await startDev()
  const b = await startDev()
  const addrA = `127.0.0.1:${a.port}`
  const addrB = `127.0.0.1:${b.port}`
  // Cluster A, namespaces public and ns2; cluster B, public: the same service and config names everywhere.
  const writers = [
    { opts: { serverAddr: addrA }, port: 4501 },
    { opts: { serverAddr: addrA, namespace: 'ns2' }, port: 4502 },
    { opts: { serverAddr: addrB }, port: 4503 }
  ]
  for (const w of writers) {
    const c = new NacosClient({ ...w.opts, cacheDir, namingPollIntervalMs: 100 })
    await c.naming.register('snap', { ip: '127.0.0.1', port: w.port })
    await waitFor('instance listed', async () => (await c.naming.instances('snap')).length === 1, 15_000)
    await c.config.publish('rules', 'G', `from ${w.port}`)
    t.equal(await c.config.get('rules', 'G'), `from ${w.port}`)
    await c.close()
  }
  await Promise.all([a.close(), b.close()])

  // Both servers down: each client serves only what its own cluster and namespace said.
  const logged: Array<{ obj: Record<string, unknown>, msg: string | undefined }> = []
  const capture = (obj: object, msg?: string) => { logged.push({ obj: obj as Record<string, unknown>, msg }) }
  const logger = { debug: capture, info: capture, warn: capture, error: capture }
  for (const w of writers) {
    const c = new NacosClient({ ...w.opts, cacheDir, timeoutMs: 300, logger })
    t.teardown(() => c.close())
    t.same((await c.naming.instances('snap')).map((i) => i.port), [w.port], `${JSON.stringify(w.opts)}: its own instances`)
    t.equal(await c.config.get('rules', 'G'), `from ${w.port}`, `${JSON.stringify(w.opts)}: its own config`)
  }
  // Logged as `err` in the Error's own shape (pino's err serializer: type NacosError, code, stack).
  const fallback = logged.find((l) => l.msg === 'nacos unreachable, serving instances from snapshot')
  t.ok(fallback?.obj.err instanceof NacosError, 'the logged err is the NacosError itself')
  t.match(fallback?.obj.err, { code: 'FLOWTAG_NACOS_UNREACHABLE' })
  // A config call to a dead server names the operation and the server, not the probe's naming URL.
  const configOnly = new NacosClient({ serverAddr: addrA, timeoutMs: 300 })
  t.teardown(() => configOnly.close())
  const err = await configOnly.config.get('rules', 'G').catch((e: unknown) => e as Error)
  t.match(err, { code: 'FLOWTAG_NACOS_UNREACHABLE', message: /^no Nacos server reachable for get config: http:\/\/127\.0\.0\.1:\d+ did not answer \(probing its API\): failed: / })
  t.notMatch((err as Error).message, /\/ns\//, 'no naming path in a config error')

  // The same servers in another order (or with http://) are the same cluster; a third cluster has nothing.
  const both = new NacosClient({ serverAddr: `${addrB},${addrA}`, cacheDir, timeoutMs: 300 })
  const again = new NacosClient({ serverAddr: ['http://' + addrA, addrB], cacheDir, timeoutMs: 300 })
  t.teardown(() => Promise.all([both.close(), again.close()]))
  t.equal(both.snapshotScope, again.snapshotScope, 'order and scheme do not change the cluster')
  t.match(both.snapshotScope, /^127\.0\.0\.1_\d+\+1-[0-9a-f]{12}\/public$/, 'a readable, file-name-safe folder')
  t.equal(both.snapshotDir, join(cacheDir, both.snapshotScope))
  await t.rejects(both.naming.instances('snap'), { code: 'FLOWTAG_NACOS_UNREACHABLE' }, 'a list of both is another cluster: no snapshot')
  const endpoint = new NacosClient({ endpoint: addrA, cacheDir })
  t.teardown(() => endpoint.close())
  t.match(endpoint.snapshotScope, /^endpoint-127\.0\.0\.1_\d+-[0-9a-f]{12}\/public$/, 'an address server is a cluster of its own')
  t.equal(new NacosClient({ serverAddr: addrA }).snapshotDir, undefined, 'no cacheDir, no folder')
})
