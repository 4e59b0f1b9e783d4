// A lane canary as a person sees it: `flowtag canary status lane:v2` (its own process) lists the
// lane's services with their verdicts and figures and names the one that failed the lane; the
// dashboard (headless Debian Chromium) shows the same lane view, with each service's last checks.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import t from 'tap'
import { CanaryController, startDashboard } from '../src/index.ts'
import { laneWorld } from './fixtures/lane-world.ts'

const BIN = join(import.meta.dirname, '../src/bin.ts')

function cli (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d })
  child.stderr.on('data', (d: Buffer) => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) => child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) }))
}

const spec = { lane: 'v2', stable: 'v1', services: ['user-service', 'notify-consumer'], steps: [20, 50, 100], intervalMs: 400, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000 }

t.test('status and dashboard of a lane rolled back by user-service', async (t) => {
  const { dev, nacos } = await laneWorld(t, { fail: { 'user-service': 0.2 } })
  const c = await CanaryController.start(spec, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const d = await startDashboard({ controller: c, nacos, token: 'secret-token-2' })
  t.teardown(() => d.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back')

  const status = await cli(['--nacos', dev.address, 'canary', 'status', 'lane:v2'])
  t.equal(status.code, 1, 'a rolled-back canary exits 1')
  t.match(status.stdout, /^lane:v2 v2→ rolled-back/)
  t.match(status.stdout, /lane v2 against v1: 3 services, user-service failed/)
  t.match(status.stdout, /\n {2}user-service +http +fail (?:\(warming\) +)?\d+ req, errors \d+\.\d%, p99 \d+ ms +\d+ req, errors 0\.0%.* <- failed the lane/)
  t.match(status.stdout, /\n {2}notify-consumer +consumer +(pass|waiting)( \(warming\))? /)
  t.match(status.stdout, /rollback: rolled back: user-service failed: .*the whole lane: notify-consumer, order-service, user-service/)
  const json = JSON.parse((await cli(['--nacos', dev.address, '--json', 'canary', 'status', 'lane:v2'])).stdout) as { lane: { failing: string, services: unknown[] } }
  t.equal(json.lane.failing, 'user-service')
  t.equal(json.lane.services.length, 3)

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    timeout: 30_000
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  await page.goto(d.url)
  await page.locator('#phase', { hasText: /^rolled-back$/ }).waitFor({ timeout: 15_000 })
  t.match(await page.textContent('#service'), /lane v2: v2 vs v1/)
  t.match(await page.textContent('#lane-name'), /v2 vs v1 — user-service failed the lane/)
  t.equal(await page.locator('#lane-services tr[data-service]').count(), 3, 'one row per service of the lane')
  const failing = page.locator('#lane-services tr.failing')
  t.equal(await failing.count(), 1)
  t.match(await failing.textContent(), /user-service.*http.*fail.*req, errors/)
  t.match(await page.locator('#lane-services tr[data-service="user-service"] td.trail').textContent(), /✗$/, 'its last checks end in the failure')
  t.match(await page.locator('#lane-services tr[data-service="notify-consumer"] td').nth(1).textContent(), 'consumer')
})

t.test('a one-service canary has no lane view', async (t) => {
  const { nacos } = await laneWorld(t, { without: ['notify-consumer', 'user-service'] })
  const c = await CanaryController.start({ service: 'order-service', candidate: 'v2', stable: 'v1', steps: [50, 100], intervalMs: 400, minRequests: 20 }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'promoted')
  t.equal(end.lane, undefined)
  t.notOk(end.history.some((e) => e.data?.services !== undefined), 'no per-service data')
})
