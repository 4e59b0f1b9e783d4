// Express with the default signals: SIGTERM deregisters, keeps serving drainMs, then the process ends.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { NacosClient } from '@flowtag/nacos'
import t from 'tap'
import { startDev } from './fixtures/nacos.ts'
import { waitFor } from '@flowtag/test-kit'

t.test('SIGTERM: deregister, drain while serving, then exit', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false }) // sees the instance leave
  t.teardown(() => admin.close())
  const script = fileURLToPath(new URL('./fixtures/express-app.ts', import.meta.url))
  const child = spawn(process.execPath, [script, dev.address, '800'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  // A child process under tap's loaders on a loaded machine can take many seconds to start.
  await waitFor('listening', () => /listening \d+/.test(out), 60_000)
  const port = Number(/listening (\d+)/.exec(out)![1])
  await waitFor('registered', async () => (await admin.naming.instances('signalled')).length === 1)
  t.equal((await fetch(`http://127.0.0.1:${port}/ready`)).status, 200)

  const sent = Date.now()
  child.kill('SIGTERM')
  await waitFor('deregistered', async () => (await admin.naming.instances('signalled')).length === 0, 5000)
  t.equal((await fetch(`http://127.0.0.1:${port}/ready`)).status, 503, 'not ready while draining')
  t.equal((await fetch(`http://127.0.0.1:${port}/work`, { headers: { connection: 'close' } })).status, 200, 'still serving while draining')
  const [code, signal] = await exited
  t.ok(Date.now() - sent >= 750, 'stayed up for drainMs')
  t.ok(code === 0 || signal === 'SIGTERM', `ended by the signal's default action (code ${code}, signal ${signal})`)
})
