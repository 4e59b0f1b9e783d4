// Empty protection tells a service whose last instance left from a server that lost its state
// (src/empty-list.ts): an empty list pushed over a gRPC connection older than the hold is applied
// at once; one right after a reconnect, a restart or a switch to another server is held for the
// hold; over HTTP, where nothing shows a restart, it applies once it has stayed empty for the hold.
// Against the dev server always, and against a real Nacos when NACOS_SERVER_ADDR is set.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { unique, waitFor } from '@flowtag/test-kit'
import { NacosClient, type NacosClientOptions, type ServiceChange } from '../src/index.ts'
import { emptyListAppliesAt } from '../src/empty-list.ts'
import { flavours, memoryLogger, startDev, targets, type LogLine } from './fixtures/target.ts'

const HOLD = 1500
const heldLog = (l: LogLine) => l.msg?.startsWith('nacos answered an empty instance list') === true
const appliedLog = (l: LogLine) => l.msg?.includes('empty list applied') === true

t.test('the rule: an empty answer applies once the server is known up, without trouble, for the hold', async (t) => {
  // gRPC: known up since the connection's set-up, whatever the first empty answer.
  t.equal(emptyListAppliesAt({ upSince: 1000, emptySince: 9000, troubleAt: 0 }, 5000), 6000)
  // HTTP: nothing tells a restart, so the list must stay empty for the hold.
  t.equal(emptyListAppliesAt({ upSince: undefined, emptySince: 9000, troubleAt: 0 }, 5000), 14_000)
  // A failure, recovery or reconnect since: the hold counts from it.
  t.equal(emptyListAppliesAt({ upSince: 1000, emptySince: 9000, troubleAt: 8000 }, 5000), 13_000)
  t.equal(emptyListAppliesAt({ upSince: undefined, emptySince: 9000, troubleAt: 12_000 }, 5000), 17_000)
  // No hold: at once.
  t.equal(emptyListAppliesAt({ upSince: 1000, emptySince: 9000, troubleAt: 8000 }, 0), 8000)
})

for (const target of targets()) {
  const credsOf = (s: { username?: string, password?: string }): Partial<NacosClientOptions> =>
    s.username === undefined ? {} : { username: s.username, password: s.password ?? '' }

  t.test(`${target.kind}: gRPC: the last instance deregistered by another client leaves at once over a connection older than the hold`, async (t) => {
    const s = await target.start()
    t.teardown(() => s.close())
    const svc = unique('last-grpc')
    const provider = new NacosClient({ serverAddr: s.addr, transport: 'grpc', ...credsOf(s) })
    const log = memoryLogger()
    const watcher = new NacosClient({ serverAddr: s.addr, transport: 'grpc', namingRecoveryHoldMs: HOLD, logger: log, ...credsOf(s) })
    t.teardown(() => Promise.all([provider.close(), watcher.close()]))
    await provider.naming.register(svc, { ip: '127.0.0.1', port: 4951 })
    const changes: ServiceChange[] = []
    watcher.naming.subscribe(svc, (c) => changes.push(c))
    await waitFor('listed', async () => (await watcher.naming.instances(svc)).length === 1, 20_000)
    await sleep(HOLD + 300) // the watcher's connection is now older than the hold

    await provider.naming.deregister(svc, { ip: '127.0.0.1', port: 4951 })
    await waitFor('the empty list applied', async () => (await watcher.naming.instances(svc)).length === 0, 20_000)
    t.equal(watcher.naming.stats().emptyHeld, 0, 'the empty list was never held')
    t.same(watcher.naming.stats().stale, [])
    t.match(changes.at(-1), { instances: [], removed: [{ port: 4951 }] }, 'subscribers told')
    t.ok(log.lines.some(appliedLog), 'logged')
    t.notOk(log.lines.some(heldLog))
  })

  t.test(`${target.kind}: HTTP: the last instance deregistered by another client is held for the hold, then applied`, async (t) => {
    const s = await target.start()
    t.teardown(() => s.close())
    for (const transport of await flavours(target.kind)) {
      const svc = unique(`last-${transport}`)
      const provider = new NacosClient({ serverAddr: s.addr, transport, ...credsOf(s) })
      const log = memoryLogger()
      const watcher = new NacosClient({ serverAddr: s.addr, transport, namingPollIntervalMs: 200, namingRecoveryHoldMs: HOLD, logger: log, ...credsOf(s) })
      t.teardown(() => Promise.all([provider.close(), watcher.close()]))
      await provider.naming.register(svc, { ip: '127.0.0.1', port: 4953 })
      await waitFor('listed', async () => (await watcher.naming.instances(svc)).length === 1, 20_000)

      await provider.naming.deregister(svc, { ip: '127.0.0.1', port: 4953 })
      await waitFor(`${transport}: the first empty answer held`, () => watcher.naming.stats().emptyHeld >= 1, 20_000)
      t.same(watcher.naming.stats().stale, [`DEFAULT_GROUP@@${svc}`], `${transport}: stale while held`)
      await waitFor(`${transport}: the empty list applied after the hold`, async () => (await watcher.naming.instances(svc)).length === 0, 20_000)
      const heldAt = log.lines.find(heldLog)?.at ?? 0
      const appliedAt = log.lines.find(appliedLog)?.at ?? 0
      t.ok(heldAt > 0 && appliedAt - heldAt >= HOLD, `${transport}: applied ${appliedAt - heldAt} ms after the first empty answer (hold ${HOLD} ms)`)
      t.same(watcher.naming.stats().stale, [], `${transport}: no longer stale`)
    }
  })
}

t.test('dev: gRPC: an empty list right after a server restart is held for the hold; the instance never comes back: applied then', async (t) => {
  let dev = await startDev()
  const port = dev.port
  t.teardown(() => dev.close())
  const svc = unique('restart-grpc')
  const provider = new NacosClient({ serverAddr: dev.address, transport: 'grpc' })
  const log = memoryLogger()
  const watcher = new NacosClient({ serverAddr: dev.address, transport: 'grpc', namingRecoveryHoldMs: HOLD, logger: log })
  t.teardown(() => Promise.all([provider.close(), watcher.close()]))
  await provider.naming.register(svc, { ip: '127.0.0.1', port: 4952 })
  watcher.naming.subscribe(svc, () => {})
  await waitFor('listed', async () => (await watcher.naming.instances(svc)).length === 1, 10_000)
  await sleep(HOLD + 300)

  await dev.close()
  await provider.close() // gone for good while the server is down
  await sleep(500)
  dev = await startDev({ port })
  const restartedAt = Date.now()
  await waitFor('the restarted server\'s empty answer held', () => watcher.naming.stats().emptyHeld >= 1, 10_000)
  t.same((await watcher.naming.instances(svc)).map((i) => i.port), [4952], 'the last list is served while held')
  await waitFor('applied after the hold', async () => (await watcher.naming.instances(svc)).length === 0, 15_000)
  const appliedAt = log.lines.find(appliedLog)?.at ?? 0
  t.ok(appliedAt - restartedAt >= HOLD, `applied ${appliedAt - restartedAt} ms after the restart (hold ${HOLD} ms from the new connection)`)
})

t.test('dev: gRPC: the next server\'s empty list after a failover is held for the hold', async (t) => {
  const a = await startDev()
  const b = await startDev()
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const svc = unique('failover-grpc')
  const provider = new NacosClient({ serverAddr: a.address, transport: 'grpc' })
  t.teardown(() => provider.close())
  await provider.naming.register(svc, { ip: '127.0.0.1', port: 4954 })
  // A client starts at a random server of its list: take one that started on a (b never had the instance).
  let watcher: NacosClient | undefined
  let log = memoryLogger()
  for (let i = 0; i < 30 && watcher === undefined; i++) {
    log = memoryLogger()
    const c = new NacosClient({ serverAddr: [a.address, b.address], transport: 'grpc', namingRecoveryHoldMs: HOLD, logger: log })
    await c.naming.instances(svc)
    if (c.server.origin === `http://${a.address}`) watcher = c
    else await c.close()
  }
  if (watcher === undefined) throw new Error('no client started on the first server')
  const w = watcher
  t.teardown(() => w.close())
  w.naming.subscribe(svc, () => {})
  await waitFor('listed', async () => (await w.naming.instances(svc)).length === 1, 10_000)
  await sleep(HOLD + 300)

  const lostAt = Date.now()
  await a.close()
  await waitFor('the other server\'s empty answer held', () => w.naming.stats().emptyHeld >= 1, 15_000)
  await waitFor('moved', () => w.server.origin === `http://${b.address}`, 15_000)
  t.equal(w.server.origin, `http://${b.address}`, 'moved to the other server')
  t.same((await w.naming.instances(svc)).map((i) => i.port), [4954], 'held')
  await waitFor('applied after the hold', async () => (await w.naming.instances(svc)).length === 0, 15_000)
  const appliedAt = log.lines.find(appliedLog)?.at ?? 0
  t.ok(appliedAt - lostAt >= HOLD, `applied ${appliedAt - lostAt} ms after the first server died (hold ${HOLD} ms)`)
})
