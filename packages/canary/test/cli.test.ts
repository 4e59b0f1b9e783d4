// The flowtag CLI as a user runs it: its own process, against the Nacos dev server.
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { baseRules, world } from './fixtures/world.ts'

const BIN = join(import.meta.dirname, '../src/bin.ts')

function run (args: string[], addr: string): { done: Promise<{ code: number | null, stdout: string, stderr: string }>, kill (): void } {
  const child = spawn(process.execPath, [BIN, '--nacos', addr, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d })
  child.stderr.on('data', (d: Buffer) => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return {
    done: new Promise((resolve) => child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })),
    kill: () => child.kill('SIGTERM')
  }
}

t.test('rules validate | get | diff | publish, instances, canary start | status | pause | abort', async (t) => {
  const { dev } = await world(t)
  const addr = dev.address
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-cli-'))
  const good = join(dir, 'good.json')
  const bad = join(dir, 'bad.json')
  await writeFile(good, JSON.stringify({ ...baseRules, version: 5, default: 'v1' }))
  await writeFile(bad, JSON.stringify({ version: 1, rules: [{ name: 'x', lane: 'v2', split: { weights: { v2: 1 } } }], default: 'v1' }))

  let r = await run(['rules', 'validate', good], addr).done
  t.equal(r.code, 0, r.stderr)
  r = await run(['rules', 'validate', bad], addr).done
  t.equal(r.code, 1, 'invalid: exit 1')
  t.match(r.stderr, /rules\.0/, 'the path is named')
  r = await run(['rules', 'validate', join(dir, 'missing.json')], addr).done
  t.equal(r.code, 3, 'unreadable file: exit 3')
  r = await run(['rules', 'frobnicate'], addr).done
  t.equal(r.code, 2, 'usage: exit 2')

  r = await run(['rules', 'diff', good, '--json'], addr).done
  t.match(JSON.parse(r.stdout), [{ path: 'version', before: 1, after: 5 }])
  r = await run(['rules', 'publish', good], addr).done
  t.equal(r.code, 0, r.stderr)
  r = await run(['rules', 'publish', good], addr).done
  t.equal(r.code, 4, 'same version again: refused, exit 4')
  r = await run(['rules', 'get'], addr).done
  t.equal(JSON.parse(r.stdout).version, 5)

  // instances report the version they apply
  const deadline = Date.now() + 10_000
  let listed: { ruleVersion: number, instances: Array<{ lane: string, ruleVersion: string }> } | undefined
  while (Date.now() < deadline) {
    r = await run(['instances', 'order-service', '--json'], addr).done
    listed = JSON.parse(r.stdout)
    if (listed!.instances.every((i) => i.ruleVersion === '5')) break
  }
  t.same(listed!.instances.map((i) => `${i.lane}@${i.ruleVersion}`).sort(), ['v1@5', 'v2@5'])

  const spec = join(dir, 'canary.json')
  await writeFile(spec, JSON.stringify({ service: 'order-service', candidate: 'v2', stable: 'v1', steps: [10, 50, 100], intervalMs: 60_000, minRequests: 20 }))
  const canary = run(['canary', 'start', spec, '--json'], addr)
  let status: { code: number | null, stdout: string } = { code: null, stdout: '' }
  while (Date.now() < deadline + 10_000) {
    status = await run(['canary', 'status', 'order-service', '--json'], addr).done
    if (status.code === 0 && JSON.parse(status.stdout).phase === 'waiting') break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(JSON.parse(status.stdout).phase, 'waiting', 'converged, the long interval keeps it waiting for its first check')
  r = await run(['canary', 'start', spec], addr).done
  t.equal(r.code, 4, 'a second canary of the same service: exit 4')
  r = await run(['canary', 'pause', 'order-service', '--json'], addr).done
  t.equal(r.code, 0, r.stderr)
  t.equal(JSON.parse(r.stdout).state.phase, 'paused')
  r = await run(['canary', 'abort', 'order-service'], addr).done
  t.equal(r.code, 0, r.stderr)
  const end = await canary.done
  t.equal(end.code, 1, 'the canary ended aborted: exit 1')
  const events = end.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event)
  t.same(events.filter((e) => ['start', 'step', 'converged', 'pause', 'abort'].includes(e)), ['start', 'step', 'converged', 'pause', 'abort'])
  r = await run(['canary', 'abort', 'order-service'], addr).done
  t.equal(r.code, 4, 'an ended canary: exit 4')
  r = await run(['canary', 'status', 'order-service'], addr).done
  t.equal(r.code, 1, 'status of an aborted canary: exit 1')
  t.match(r.stdout, /aborted/)
})
