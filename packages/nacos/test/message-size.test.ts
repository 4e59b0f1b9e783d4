// gRPC message sizes: the client sends and receives what Nacos itself does (10 MiB, not grpc-js's
// 4 MiB), and a message over the limit is an error of that request, naming the config and its
// size, never a server taken for down (no reconnect, no re-registration, no recovery hold).
// Against the dev server always, and against a real Nacos when NACOS_SERVER_ADDR is set.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { unique, waitFor } from '@flowtag/test-kit'
import { NacosClient, type NacosClientOptions, type NacosError } from '../src/index.ts'
import { memoryLogger, startDev, targets } from './fixtures/target.ts'

const MiB = 1024 * 1024

/** A RuleSet-like JSON document of about `bytes` characters (quotes make its gRPC message larger still). */
function ruleSet (bytes: number): string {
  const rules: string[] = []
  let size = 12
  for (let i = 0; size < bytes; i++) {
    const r = `{"name":"r${i}","when":{"headers":{"x-user":{"equals":"user-${i}"}}},"lane":"v2"}`
    rules.push(r)
    size += r.length + 1
  }
  return `{"rules":[${rules.join(',')}]}`
}

for (const target of targets()) {
  t.test(`${target.kind}: a 5 MB config is published and read over gRPC (Nacos's 10 MiB messages); over a smaller limit, that read alone fails`, async (t) => {
    const s = await target.start()
    t.teardown(() => s.close())
    const creds: Partial<NacosClientOptions> = s.username === undefined ? {} : { username: s.username, password: s.password ?? '' }
    const dataId = unique('big-rules')
    const content = ruleSet(5_000_000)
    // Nacos 3.1.0 took 4.6 s to accept this publish on a loaded machine (2.5.0: 1 s): more than the 5 s default leaves.
    const writer = new NacosClient({ serverAddr: s.addr, transport: 'grpc', timeoutMs: 60_000, ...creds })
    const reader = new NacosClient({ serverAddr: s.addr, transport: 'grpc', timeoutMs: 60_000, ...creds })
    const log = memoryLogger()
    const small = new NacosClient({ serverAddr: s.addr, transport: 'grpc', grpcMaxMessageBytes: 4 * MiB, logger: log, ...creds })
    t.teardown(() => Promise.all([writer.close(), reader.close(), small.close()]))

    await writer.config.publish(dataId, 'G', content, 'json')
    // A real Nacos makes a publish readable a moment later, and answers a read while it writes a
    // large config down with 400 "requested file is being modified, please try later".
    const got = await waitFor('the 5 MB config read back', async () => {
      try {
        return (await reader.config.get(dataId, 'G')) ?? undefined
      } catch (err) {
        if ((err as NacosError).code === 'FLOWTAG_NACOS_HTTP' && /being modified/.test((err as Error).message)) return undefined
        throw err
      }
    }, 20_000)
    t.equal(got.length, content.length, `${content.length} characters read back`)
    t.ok(got === content, 'the same content')

    let err: (Error & { code?: string, bytes?: number, limitBytes?: number }) | undefined
    try {
      await small.config.get(dataId, 'G')
    } catch (e) {
      err = e as Error
    }
    t.match(err, { code: 'FLOWTAG_NACOS_TOO_LARGE', limitBytes: 4 * MiB }, 'a request error')
    t.match(err?.message, new RegExp(`reading config "${dataId}" \\(group G\\) over gRPC: a message of \\d+ bytes, over the message size limit of ${4 * MiB} bytes`), 'names the config and its size')
    t.ok((err?.bytes ?? 0) > content.length, `its message is ${err?.bytes} bytes`)
    t.equal(await small.config.get(unique('small'), 'G'), undefined, 'the same connection serves the next read')
    t.equal(small.naming.stats().recoveries, 0, 'the server was never taken for down')
    t.notOk(log.lines.some((l) => l.msg === 'nacos grpc connection lost'), 'no reconnect')

    // The server's own limit is 10 MiB too: a client allowed more is refused by the server, for that request only.
    const wide = new NacosClient({ serverAddr: s.addr, transport: 'grpc', grpcMaxMessageBytes: 32 * MiB, timeoutMs: 60_000, ...creds })
    t.teardown(() => wide.close())
    await t.rejects(wide.config.publish(unique('over-server'), 'G', 'x'.repeat(11 * MiB)), { code: 'FLOWTAG_NACOS_TOO_LARGE', limitBytes: 10 * MiB, bytes: Number }, "over the server's 10 MiB, sizes from its status")
    t.equal(await wide.config.get(unique('after'), 'G'), undefined, 'and the connection serves on')
    t.equal(wide.naming.stats().recoveries, 0)

    // Over HTTP v1 Nacos reads no form over 2 MiB: said so, not "dataId is not present".
    const http = new NacosClient({ serverAddr: s.addr, transport: 'http-v1', ...creds })
    t.teardown(() => http.close())
    await t.rejects(http.config.publish(dataId, 'G', content), {
      code: 'FLOWTAG_NACOS_TOO_LARGE',
      statusCode: 400,
      message: new RegExp(`publishing config "${dataId}" \\(group G\\) over HTTP: a form of \\d+ bytes, over the 2097152 Nacos reads .*publish large configs over gRPC`)
    })
  })
}

t.test('dev: a 12 MB answer fails that read alone: named, logged once, the server not taken for down (no reconnect, re-registration or recovery hold)', async (t) => {
  // Nacos refuses content over 10 MiB characters; this server is told to keep more, so that its answer outgrows the client's limit.
  const dev = await startDev({ configMaxContent: 16 * MiB, maxFormBytes: 40 * MiB, maxBodyBytes: 40 * MiB })
  t.teardown(() => dev.close())
  const svc = unique('sized')
  const dataId = unique('huge-rules')
  const publisher = new NacosClient({ serverAddr: dev.address, transport: 'http-v1' })
  const providers = [new NacosClient({ serverAddr: dev.address, transport: 'grpc' }), new NacosClient({ serverAddr: dev.address, transport: 'grpc' })]
  const log = memoryLogger()
  // A recovery hold (had the server been taken for down) would keep a deregistered instance 30 s.
  const reader = new NacosClient({ serverAddr: dev.address, transport: 'grpc', namingRecoveryHoldMs: 30_000, logger: log })
  t.teardown(() => Promise.all([publisher.close(), reader.close(), ...providers.map((p) => p.close())]))

  await providers[0]!.naming.register(svc, { ip: '127.0.0.1', port: 4961 })
  await providers[1]!.naming.register(svc, { ip: '127.0.0.1', port: 4962 })
  await reader.naming.register(unique('reader'), { ip: '127.0.0.1', port: 4963 })
  reader.naming.subscribe(svc, () => {})
  await waitFor('both listed', async () => (await reader.naming.instances(svc)).length === 2, 10_000)
  await publisher.config.publish(dataId, 'G', 'x'.repeat(12 * 1_000_000))

  await t.rejects(reader.config.get(dataId, 'G'), { code: 'FLOWTAG_NACOS_TOO_LARGE', message: new RegExp(`reading config "${dataId}" \\(group G\\) over gRPC: a message of 120\\d{5} bytes`) })
  const heard: Array<string | undefined> = []
  reader.config.listen(dataId, 'G', (c) => heard.push(c))
  // The listen loop reads it too, fails, and tries again after 1 s, 2 s, ...: logged once.
  await waitFor('the listen loop tried twice', () => log.lines.some((l) => l.msg === 'nacos config still unreadable'), 10_000)
  const reported = log.lines.filter((l) => l.msg === 'nacos config could not be read; listeners keep the last content')
  t.equal(reported.length, 1, 'logged once')
  t.match(reported[0]?.obj, { dataId, group: 'G', bytes: Number }, 'with the config and its size')

  // Meanwhile an instance leaves: gone from the list at once, not 30 s later.
  await providers[1]!.naming.deregister(svc, { ip: '127.0.0.1', port: 4962 })
  await waitFor('the deregistered instance gone', async () => (await reader.naming.instances(svc)).length === 1, 10_000)
  t.same((await reader.naming.instances(svc)).map((i) => i.port), [4961])
  t.match(reader.naming.stats(), { recoveries: 0, reregistered: 0, missingKept: 0, emptyHeld: 0 }, 'not taken for down, nothing re-registered, no hold')
  t.equal(log.lines.filter((l) => l.msg === 'nacos grpc connected').length, 2, 'the naming and config connections, never again')
  t.notOk(log.lines.some((l) => l.msg === 'nacos grpc connection lost' || l.msg === 'nacos answers again'), 'no reconnect, no recovery')

  // Sent the other way: a publish over the limit fails before it leaves, naming the config.
  await t.rejects(reader.config.publish(unique('huge-out'), 'G', 'y'.repeat(11 * MiB)), { code: 'FLOWTAG_NACOS_TOO_LARGE', message: /publishing config "huge-out-[^"]+" \(group G\) over gRPC/ })

  // Smaller again: the listener gets it at its next try.
  await publisher.config.publish(dataId, 'G', '{"rules":[]}')
  await waitFor('readable again', () => heard.includes('{"rules":[]}'), 20_000)
  t.ok(log.lines.some((l) => l.msg === 'nacos config readable again'))
  await sleep(100)
  t.equal(reader.naming.stats().recoveries, 0)
})
