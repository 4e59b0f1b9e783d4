import t from 'tap'
import { createServer } from 'node:http'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exitOf, freePort, listenOnLoopback, runNode, startNode, stopChild, unique, waitFor } from '../src/index.ts'

t.test('waitFor resolves with the first value that holds, and names what it waited for on timeout', async (t) => {
  let n = 0
  t.equal(await waitFor('n to reach 3', () => ++n >= 3, 1000, 1), true)
  t.equal(n, 3)
  let m = 0
  t.equal(await waitFor('a value', async () => (++m === 2 ? 'found' : undefined), 1000, 1), 'found')
  t.equal(await waitFor('zero counts', () => 0, 100), 0, '0 and empty strings are values')
  await t.rejects(waitFor('the impossible', () => false, 50, 5), { message: /timed out after 50 ms waiting for the impossible/ })
  await t.rejects(waitFor('null', () => null, 30, 5), /waiting for null/)
  await t.rejects(waitFor('a broken probe', () => { throw new Error('boom') }, 1000), /boom/, 'a throwing check rejects at once')
})

t.test('unique gives distinct names under a prefix', async (t) => {
  const a = unique('svc')
  t.match(a, /^svc-[0-9a-f]{8}$/)
  t.not(a, unique('svc'))
})

t.test('ports: listenOnLoopback reports the chosen port; freePort hands out a bindable one', async (t) => {
  const server = createServer((_req, res) => res.end('ok'))
  const port = await listenOnLoopback(server)
  t.teardown(() => server.close())
  t.ok(port > 0)
  t.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'ok')
  const busy = createServer()
  await t.rejects(new Promise((resolve, reject) => { busy.once('error', reject); busy.listen(port, '127.0.0.1', () => resolve(undefined)) }), { code: 'EADDRINUSE' })
  const free = await freePort()
  const again = createServer()
  await new Promise<void>((resolve) => again.listen(free, '127.0.0.1', resolve))
  t.equal((again.address() as { port: number }).port, free)
  again.close()
})

t.test('child processes: run to the end, or stop; bounded in time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'test-kit-'))
  const ok = join(dir, 'ok.mjs')
  writeFileSync(ok, 'console.log(process.argv[2], process.env.GREETING); console.error("to stderr"); process.exit(3)\n')
  const r = await runNode(t, ok, { args: ['hello'], env: { GREETING: 'hi' } })
  t.same(r, { code: 3, signal: null, stdout: 'hello hi\n', stderr: 'to stderr\n' })

  const hang = join(dir, 'hang.mjs')
  writeFileSync(hang, 'setInterval(() => {}, 1000)\n')
  await t.rejects(runNode(t, hang, {}, 300), /did not exit within 300 ms/)

  // The child runs under the test process's Node options (tap's loaders, coverage hooks).
  const argv = join(dir, 'argv.mjs')
  writeFileSync(argv, 'console.log(JSON.stringify(process.execArgv))\n')
  t.same(JSON.parse((await runNode(t, argv)).stdout), process.execArgv, 'the parent\'s execArgv')

  const child = startNode(t, hang)
  await stopChild(child)
  t.same(await exitOf(child), { code: null, signal: 'SIGKILL' }, 'an exited child answers at once')
  await stopChild(child)
})
