// Interop with the official Node SDK (HTTP v1): each side sees what the other registers and publishes.
import t from 'tap'
import { NacosClient, type ServiceChange } from '../src/index.ts'
import { officialConfig, officialNaming, type OfficialHost } from './fixtures/official-sdk.ts'
import { flavours, targets } from './fixtures/target.ts'
import { unique, waitFor } from '@flowtag/test-kit'

// The official SDK speaks HTTP v1 only: run against targets that do.
for (const target of targets()) {
  if (!(await flavours(target.kind)).includes('http-v1')) continue
  t.test(`${target.kind}: naming both ways`, async (t) => {
    const server = await target.start()
    t.teardown(() => server.close())
    const creds = server.username === undefined ? {} : { username: server.username, password: server.password }
    // Empty protection off: ours is to see the last (official) instance leave.
    const ours = new NacosClient({ serverAddr: server.addr, namingPollIntervalMs: 500, namingProtectEmpty: false, ...creds })
    const theirs = officialNaming(server.addr, creds)
    t.teardown(async () => {
      await theirs.close()
      await ours.close()
    })
    await theirs.ready()
    const svc = unique('interop')

    // Official registers, we discover.
    const ourChanges: ServiceChange[] = []
    ours.naming.subscribe(svc, (c) => ourChanges.push(c))
    await theirs.registerInstance(svc, { ip: '127.0.0.1', port: 4701, metadata: { version: 'v1' } })
    await waitFor('ours sees theirs', () => ourChanges.some((c) => c.added.some((i) => i.port === 4701 && i.metadata.version === 'v1')), 15_000)

    // We register, official discovers through its subscription.
    let theirView: OfficialHost[] = []
    theirs.subscribe(svc, (hosts) => (theirView = hosts))
    await ours.naming.register(svc, { ip: '127.0.0.1', port: 4702, metadata: { version: 'v2' } })
    await waitFor('theirs sees ours', () => theirView.some((h) => h.port === 4702 && h.metadata.version === 'v2'), 15_000)
    t.same((await theirs.getAllInstances(svc, 'DEFAULT_GROUP', '', false)).map((h) => h.port).sort(), [4701, 4702])

    await ours.naming.deregister(svc, { ip: '127.0.0.1', port: 4702 })
    await waitFor('theirs sees our removal', () => !theirView.some((h) => h.port === 4702), 15_000)
    await theirs.deregisterInstance(svc, { ip: '127.0.0.1', port: 4701 })
    await waitFor('ours sees their removal', () => ourChanges.some((c) => c.removed.some((i) => i.port === 4701)), 15_000)
  })

  t.test(`${target.kind}: config both ways`, async (t) => {
    const server = await target.start()
    t.teardown(() => server.close())
    const creds = server.username === undefined ? {} : { username: server.username, password: server.password }
    const ours = new NacosClient({ serverAddr: server.addr, ...creds })
    const theirs = officialConfig(server.addr, t.testdir(), creds)
    t.teardown(async () => {
      theirs.close()
      await ours.close()
      await server.close() // ends the official client's held long poll
    })
    await theirs.ready()
    const a = unique('from-theirs')
    const b = unique('from-ours')

    const oursSaw: Array<string | undefined> = []
    ours.config.listen(a, 'G', (c) => oursSaw.push(c))
    await theirs.publishSingle(a, 'G', 'published by the official SDK')
    await waitFor('ours listener', () => oursSaw.includes('published by the official SDK'), 15_000)
    t.equal(await ours.config.get(a, 'G'), 'published by the official SDK')

    const theirsSaw: string[] = []
    theirs.subscribe({ dataId: b, group: 'G' }, (c) => theirsSaw.push(c))
    await ours.config.publish(b, 'G', 'published by flowtag')
    await waitFor('theirs listener', () => theirsSaw.includes('published by flowtag'), 15_000)
    t.equal(await theirs.getConfig(b, 'G'), 'published by flowtag')
  })
}
