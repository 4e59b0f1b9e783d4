// Nacos stopped and restarted EMPTY on the same port (the dev server keeps nothing without a
// dataFile): callers must never see an empty list, own instances must be back within a second
// of the restart, and config published right after it must arrive within a second.
import t from 'tap'
import { NacosClient, type ServiceChange } from '../src/index.ts'
import { memoryLogger, startDev } from './fixtures/target.ts'
import { waitFor } from '@flowtag/test-kit'

// Nacos's production beat pace, so failed beats back off as they do in the field (5 s, then 10 s, ...).
const productionBeats = { heartbeat: { intervalMs: 5000, timeoutMs: 15_000, deleteTimeoutMs: 30_000, checkIntervalMs: 500 } }
const DOWN_MS = 8000

async function listed (port: number, service: string): Promise<number[]> {
  const res = await fetch(`http://127.0.0.1:${port}/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@${service}&groupName=DEFAULT_GROUP`)
  const body = (await res.json()) as { hosts: Array<{ port: number }> }
  return body.hosts.map((h) => h.port)
}

for (const transport of ['http-v1', 'http-v3'] as const) {
  t.test(`${transport}: Nacos down ${DOWN_MS / 1000} s, back empty: no empty list, own instance and config back within 1 s`, async (t) => {
    let dev = await startDev(productionBeats)
    const port = dev.port
    t.teardown(() => dev.close())
    const addr = `127.0.0.1:${port}`
    const providerLog = memoryLogger()
    const provider = new NacosClient({ serverAddr: addr, transport, logger: providerLog })
    const caller = new NacosClient({ serverAddr: addr, transport, namingPollIntervalMs: 1000 })
    // Config only, so nothing but its own polls and the recovery probe can notice Nacos is back.
    // v3 has no long poll: delivery takes up to configPollIntervalMs, set below the 1 s goal.
    const reader = new NacosClient({ serverAddr: addr, transport, configPollIntervalMs: 500 })
    t.teardown(() => Promise.all([provider.close(), caller.close(), reader.close()]))

    await provider.naming.register('orders', { ip: '127.0.0.1', port: 4801 })
    const lengths: number[] = []
    caller.naming.subscribe('orders', (c: ServiceChange) => lengths.push(c.instances.length))
    t.same((await caller.naming.instances('orders')).map((i) => i.port), [4801])
    const rules: Array<string | undefined> = []
    reader.config.listen('rules.json', 'G', (c) => rules.push(c))
    await new Promise((r) => setTimeout(r, 300)) // the long poll / md5 poll is running

    // Sample the caller's view all along: it must never be empty.
    let emptySeen = 0
    const sampler = setInterval(() => {
      caller.naming.instances('orders').then(
        (list) => {
          if (list.length === 0) emptySeen++
        },
        () => {}
      )
    }, 20)
    t.teardown(() => clearInterval(sampler))

    await dev.close()
    await new Promise((r) => setTimeout(r, DOWN_MS))
    dev = await startDev({ ...productionBeats, port })
    const restartedAt = Date.now()

    // A RuleSet published right after the restart, by another client.
    const publisher = new NacosClient({ serverAddr: addr, transport: 'http-v1' })
    t.teardown(() => publisher.close())
    await publisher.config.publish('rules.json', 'G', '{"rules":["after-restart"]}', 'json')
    const publishedAt = Date.now()

    let ownBackAt = 0
    let ruleAt = 0
    await waitFor('own instance and rule back', async () => {
      if (ownBackAt === 0 && (await listed(port, 'orders')).includes(4801)) ownBackAt = Date.now()
      if (ruleAt === 0 && rules.includes('{"rules":["after-restart"]}')) ruleAt = Date.now()
      return ownBackAt !== 0 && ruleAt !== 0
    }, 20_000)
    t.ok(ownBackAt - restartedAt <= 1000, `own instance listed ${ownBackAt - restartedAt} ms after the restart (<= 1000)`)
    t.ok(ruleAt - publishedAt <= 1000, `rule delivered ${ruleAt - publishedAt} ms after it was published (<= 1000)`)
    t.ok(providerLog.lines.some((l) => l.msg === 'nacos instance re-registered'), 're-registered')
    t.ok(provider.naming.stats().recoveries >= 1, 'the provider noticed the recovery')

    // The caller's watch comes round to the live list again; it never applied an empty one.
    await waitFor('caller back on a live list', () => caller.naming.stats().stale.length === 0 && lengths.at(-1) === 1, 5000)
    clearInterval(sampler)
    t.equal(emptySeen, 0, 'the caller never served an empty list')
    t.notOk(lengths.includes(0), `no listener was told of an empty list (${JSON.stringify(lengths)})`)
    t.same((await caller.naming.instances('orders')).map((i) => i.port), [4801])
  })
}

t.test('an empty answer is held (stale) until it proves true, unless this client deregistered those instances itself', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const logger = memoryLogger()
  const opts = { serverAddr: `127.0.0.1:${dev.port}`, namingPollIntervalMs: 100 }
  const owner = new NacosClient(opts)
  // Over HTTP an empty list applies once it has stayed empty for the hold (test/empty-list.test.ts): a long one keeps it held here.
  const watcher = new NacosClient({ ...opts, namingRecoveryHoldMs: 60_000, logger })
  t.teardown(() => Promise.all([owner.close(), watcher.close()]))

  await owner.naming.register('solo', { ip: '127.0.0.1', port: 4901 })
  await waitFor('watcher sees it', async () => (await watcher.naming.instances('solo')).length === 1, 15_000)
  await waitFor('owner sees it', async () => (await owner.naming.instances('solo')).length === 1, 15_000)
  const ownerChanges: ServiceChange[] = []
  owner.naming.subscribe('solo', (c) => ownerChanges.push(c))

  await owner.naming.deregister('solo', { ip: '127.0.0.1', port: 4901 })
  // The owner saw its own instance leave: the empty list is news, applied.
  await waitFor('owner applies the empty list', async () => (await owner.naming.instances('solo')).length === 0, 15_000)
  t.match(ownerChanges.at(-1), { instances: [], removed: [{ port: 4901 }] })
  t.same(owner.naming.stats().stale, [])

  // The watcher did not: it keeps the last list, marked stale, counted, logged once.
  await waitFor('several empty answers held', () => watcher.naming.stats().emptyHeld >= 3, 15_000)
  t.match(await watcher.naming.instances('solo'), [{ port: 4901 }])
  t.same(watcher.naming.stats().stale, ['DEFAULT_GROUP@@solo'])
  t.equal(logger.lines.filter((l) => l.msg?.startsWith('nacos answered an empty instance list')).length, 1, 'logged once')

  // Instances again: the list is live, no longer stale.
  const watcherChanges: ServiceChange[] = []
  watcher.naming.subscribe('solo', (c) => watcherChanges.push(c))
  await owner.naming.register('solo', { ip: '127.0.0.1', port: 4902 })
  await waitFor('live list again', () => watcherChanges.some((c) => c.added.some((i) => i.port === 4902)), 15_000)
  t.same(watcher.naming.stats().stale, [])
  t.same((await watcher.naming.instances('solo')).map((i) => i.port), [4902])
  t.ok(logger.lines.some((l) => l.msg?.startsWith('nacos service list no longer held')))
})

// Over gRPC the redone subscriptions answer before the pool announces its recovery: the hold
// must already be on then.
for (const transport of ['http', 'grpc'] as const) {
  t.test(`${transport}: after a recovery, instances missing from the restarted server are kept for namingRecoveryHoldMs, then dropped`, async (t) => {
    let dev = await startDev(productionBeats)
    const port = dev.port
    t.teardown(() => dev.close())
    const addr = `127.0.0.1:${port}`
    // It polls too, so it notices the outage and registers again as soon as the server answers,
    // before the caller (probing more slowly) is back: the caller's first answer is partial.
    const provider = new NacosClient({ serverAddr: addr, transport, namingPollIntervalMs: 300, recoveryProbeMs: 100 })
    // Registers 4802 and goes away during the outage: the restarted server never lists it again.
    const gone = new NacosClient({ serverAddr: addr, transport })
    const log = memoryLogger()
    const caller = new NacosClient({ serverAddr: addr, transport, namingPollIntervalMs: 1000, namingRecoveryHoldMs: 3000, recoveryProbeMs: 1000, logger: log })
    const early = new NacosClient({ serverAddr: addr, transport: 'http' })
    t.teardown(() => Promise.all([provider.close(), caller.close(), gone.close(), early.close()]))
    await provider.naming.register('orders', { ip: '127.0.0.1', port: 4801 })
    provider.naming.subscribe('orders', () => {})
    await gone.naming.register('orders', { ip: '127.0.0.1', port: 4802 })
    await waitFor('both listed', async () => (await caller.naming.instances('orders')).length === 2, 5000)

    const views: Array<{ at: number, ports: string }> = []
    const sampler = setInterval(() => {
      caller.naming.instances('orders').then((l) => views.push({ at: Date.now(), ports: l.map((i) => i.port).sort().join() }), () => {})
    }, 20)
    t.teardown(() => clearInterval(sampler))

    await dev.close()
    await gone.close() // while the server is down: it never registers again
    await new Promise((r) => setTimeout(r, 1500))
    dev = await startDev({ ...productionBeats, port })
    const restartedAt = Date.now()
    // 4801 is listed again at once (its own client follows): the caller, back a moment later,
    // gets a partial list as its first answer, not an empty one.
    await early.naming.register('orders', { ip: '127.0.0.1', port: 4801 })
    await waitFor('the provider registered again', async () => (await listed(port, 'orders')).includes(4801), 5000)
    await waitFor('the missing instance dropped after the hold', async () => (await caller.naming.instances('orders')).length === 1, 10_000)
    const droppedAt = Date.now()
    clearInterval(sampler)

    t.ok(views.some((v) => v.at < restartedAt + 2500 && v.at > restartedAt + 500), 'sampled during the hold')
    const partialEarly = views.filter((v) => v.at < restartedAt + 2500 && v.ports !== '4801,4802')
    t.same(partialEarly, [], 'within the hold the caller never served a partial list')
    t.ok(droppedAt - restartedAt >= 2500 && droppedAt - restartedAt <= 6000, `dropped ${droppedAt - restartedAt} ms after the restart (hold 3000 ms)`)
    t.ok(caller.naming.stats().missingKept >= 1, 'counted')
    t.equal(log.lines.filter((l) => String(l.msg).includes('recovery hold')).length >= 1, true, 'logged')
    t.same((await caller.naming.instances('orders')).map((i) => i.port), [4801])
  })
}

t.test('namingRecoveryHoldMs 0: a partial answer after a recovery applies at once', async (t) => {
  let dev = await startDev(productionBeats)
  const port = dev.port
  t.teardown(() => dev.close())
  const addr = `127.0.0.1:${port}`
  // HTTP: an instance whose client closed stays listed until its beats time out (over gRPC it
  // would leave with its connection at once).
  const provider = new NacosClient({ serverAddr: addr, namingPollIntervalMs: 300, transport: 'http' })
  const gone = new NacosClient({ serverAddr: addr, transport: 'http' })
  const caller = new NacosClient({ serverAddr: addr, namingPollIntervalMs: 300, namingRecoveryHoldMs: 0, transport: 'http' })
  t.teardown(() => Promise.all([provider.close(), caller.close(), gone.close()]))
  await provider.naming.register('orders', { ip: '127.0.0.1', port: 4801 })
  provider.naming.subscribe('orders', () => {})
  await gone.naming.register('orders', { ip: '127.0.0.1', port: 4802 })
  await gone.close()
  await waitFor('both listed', async () => (await caller.naming.instances('orders')).length === 2, 5000)
  await dev.close()
  await new Promise((r) => setTimeout(r, 1500))
  dev = await startDev({ ...productionBeats, port })
  const restartedAt = Date.now()
  await waitFor('the partial list applied', async () => (await caller.naming.instances('orders')).length === 1, 5000)
  t.ok(Date.now() - restartedAt < 2500, 'applied without a hold')
  t.equal(caller.naming.stats().missingKept, 0)
})
