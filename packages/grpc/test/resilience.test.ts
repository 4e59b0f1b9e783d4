// A killed gRPC instance fails no call it had not answered: UNAVAILABLE before any response is retried on another
// instance of the lane, and the instance is ejected (logged) until it is back.
import { spawn } from 'node:child_process'
import { once, type EventEmitter } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { credentials } from '@grpc/grpc-js'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagGrpc } from '../src/index.ts'
import { waitFor } from '@flowtag/test-kit'
import { EchoClient, echo, startEcho, type EchoReply } from './fixtures/echo.ts'

/** An echo server in its own process: `kill()` is a crash (SIGKILL). */
async function echoProcess (t: Test, id: string): Promise<{ port: number; kill(): void }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/echo-process.ts', import.meta.url)), id], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string]
  return { port: Number(line.slice('PORT '.length)), kill: () => child.kill('SIGKILL') }
}

/** One echo call that never rejects: the reply, or the error and whether response headers had come. */
function echoCall (client: InstanceType<typeof EchoClient>): Promise<EchoReply | { error: { code?: number; details?: string }; answered: boolean }> {
  return new Promise((resolve) => {
    let answered = false
    const call = (client as unknown as { echo(req: object, cb: (err: Error | null, reply: EchoReply) => void): EventEmitter }).echo({}, (err, reply) => {
      resolve(err === null ? reply : { error: err as { code?: number; details?: string }, answered })
    })
    call.on('metadata', () => { answered = true })
  })
}

t.test('killing one of two v2 instances under load fails no unanswered call and keeps the lane', async (t) => {
  const [v1, v2a, v2b] = await Promise.all([echoProcess(t, 'v1'), echoProcess(t, 'v2a'), echoProcess(t, 'v2b')])
  const discovery = new StaticDiscovery({
    echo: [
      { ip: '127.0.0.1', port: v1.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: v2a.port, metadata: { version: 'v2' } },
      { ip: '127.0.0.1', port: v2b.port, metadata: { version: 'v2' } }
    ]
  })
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', outlier: { consecutiveFailures: 1, baseEjectionMs: 60_000 }, logger: { warn: () => {}, info: () => {} } })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  // Both v2 instances connected and used.
  const warm = new Set<string>()
  for (let i = 0; i < 40; i++) warm.add((await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client))).id)
  t.same([...warm].sort(), ['v2a', 'v2b'])

  // A crash can land between a response and its status (grpc-js servers write the message, then
  // the trailers a tick later): such a call ran on the server and fails UNAVAILABLE after its
  // answer, and must not be retried. Every other call must succeed.
  const failed = { unanswered: 0, answered: 0 }
  const errors = new Set<string>()
  const ids: Record<string, number> = {}
  let killed = false
  let v2bAfterKill = 0
  let stop = false
  const worker = async () => {
    while (!stop) {
      const r = await runWithFlow({ tag: 'v2', baggage: {} }, () => echoCall(client))
      if ('id' in r) {
        ids[r.id] = (ids[r.id] ?? 0) + 1
        if (killed && r.id === 'v2b') v2bAfterKill++
        continue
      }
      failed[r.answered ? 'answered' : 'unanswered']++
      errors.add(`${r.error.code}: ${r.error.details}${r.answered ? ' (after its answer)' : ''}`)
    }
  }
  const workers = Array.from({ length: 8 }, worker)
  t.teardown(() => { stop = true })
  await waitFor('calls to both v2 instances under load', () => (ids.v2a ?? 0) >= 10 && (ids.v2b ?? 0) >= 10, 60_000)
  v2a.kill() // crashed: connections reset, no goodbye, still listed in discovery
  killed = true
  await waitFor('v2b to serve the lane after the crash', () => v2bAfterKill >= 50, 60_000)
  stop = true
  await Promise.all(workers)
  const seen = `${JSON.stringify(ids)}; ${[...errors].join(' | ')}`
  t.equal(failed.unanswered, 0, `no call failed before its answer (${seen})`)
  t.ok(failed.answered <= 8, `at most the calls in flight failed after their answer (${seen})`)
  t.equal(ids.v1, undefined, 'no v2 call left its lane')
})

t.test('UNAVAILABLE before any response is retried once on another instance of the lane; the instance is ejected', async (t) => {
  const [v1, sick, good] = await Promise.all([startEcho('v1'), startEcho('sick', {}, true), startEcho('good')])
  t.teardown(() => Promise.all([v1, sick, good].map((s) => s.close())))
  const discovery = new StaticDiscovery({
    echo: [
      { ip: '127.0.0.1', port: v1.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: sick.port, metadata: { version: 'v2' }, weight: 100 },
      { ip: '127.0.0.1', port: good.port, metadata: { version: 'v2' } }
    ]
  })
  const logged: Array<{ o: object; m: string }> = []
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', outlier: { consecutiveFailures: 3, baseEjectionMs: 60_000 }, logger: { warn: (o, m) => logged.push({ o, m }), info: () => {} } })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })
  for (let i = 0; i < 20; i++) t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client)), { id: 'good', tag: 'v2' })
  t.equal(sick.calls, 3, 'the heavy sick instance was tried until ejected, each call retried on good')
  t.match(logged, [{ o: { service: 'echo', lane: 'v2', instance: `127.0.0.1:${sick.port}`, timesEjected: 1 }, m: /ejected/ }])

  const single = new StaticDiscovery({ solo: [{ ip: '127.0.0.1', port: sick.port, metadata: { version: 'v2' } }] })
  const soloLanes = new FlowTagGrpc({ discovery: single, stableLane: 'v2', outlier: { maxEjectionPercent: 0 }, logger: { warn: () => {}, info: () => {} } })
  const solo = new EchoClient('nacos:///solo', credentials.createInsecure(), soloLanes.clientOptions())
  t.teardown(() => { solo.close(); soloLanes.close() })
  const err = await echo(solo).catch((e: unknown) => e)
  t.match(err, { code: 14, details: /sick is going away/ }, 'no other instance: the original status, not a routing error')
})

t.test('maxRetries 2: a call tries up to three instances of its lane', async (t) => {
  const servers = await Promise.all([startEcho('sick1', {}, true), startEcho('sick2', {}, true), startEcho('good')])
  t.teardown(() => Promise.all(servers.map((s) => s.close())))
  const [sick1, sick2, good] = servers
  const discovery = new StaticDiscovery({
    echo: [
      { ip: '127.0.0.1', port: sick1!.port, metadata: { version: 'v2' }, weight: 100 },
      { ip: '127.0.0.1', port: sick2!.port, metadata: { version: 'v2' }, weight: 100 },
      { ip: '127.0.0.1', port: good!.port, metadata: { version: 'v2' } }
    ]
  })
  const quiet = { warn: () => {}, info: () => {} }
  // No ejection: every call meets the sick instances again.
  const twice = new FlowTagGrpc({ discovery, stableLane: 'v2', maxRetries: 2, outlier: { maxEjectionPercent: 0 }, logger: quiet })
  const onlyOnce = new FlowTagGrpc({ discovery, stableLane: 'v2', maxRetries: 1, outlier: { maxEjectionPercent: 0 }, logger: quiet })
  const c2 = new EchoClient('nacos:///echo', credentials.createInsecure(), twice.clientOptions())
  const c1 = new EchoClient('nacos:///echo', credentials.createInsecure(), onlyOnce.clientOptions())
  t.teardown(() => { c1.close(); c2.close(); twice.close(); onlyOnce.close() })
  for (let i = 0; i < 10; i++) t.match(await echo(c2), { id: 'good' }, 'three instances tried at most: the good one answers')
  let failed = 0
  for (let i = 0; i < 10; i++) {
    const r = await echoCall(c1)
    if ('error' in r) {
      failed++
      t.match(r.error, { code: 14, details: /sick\d is going away/ }, 'the last attempt\'s own status')
    }
  }
  // Each call meets a sick instance first with p = 200/201 and again with p = 100/101.
  t.ok(failed > 0, `maxRetries 1: a call whose two attempts meet the two sick instances fails (${failed} of 10)`)
})
