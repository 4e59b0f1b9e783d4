// The dashboard in headless Debian Chromium (playwright-core): the page loads, the charts
// update, the token guards the buttons, abort rolls back. A screenshot is kept in
// test-artifacts/ (gitignored).
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import t from 'tap'
import { CanaryController, candidateWeight, readRules, startDashboard } from '../src/index.ts'
import { RULES, world } from './fixtures/world.ts'

const ARTIFACTS = join(import.meta.dirname, '../../../test-artifacts')

t.test('the page loads, the charts update, abort (with the token) rolls back', async (t) => {
  const { nacos } = await world(t)
  const c = await CanaryController.start({ service: 'order-service', candidate: 'v2', stable: 'v1', steps: [25, 50, 100], intervalMs: 60_000, minRequests: 20 }, { nacos, tickMs: 200 })
  t.teardown(() => c.close())
  const d = await startDashboard({ controller: c, nacos, token: 'secret-token-1' })
  t.teardown(() => d.close())

  const denied = await fetch(`${d.url}api/abort`, { method: 'POST', headers: { authorization: 'Bearer wrong-token-0' } })
  t.equal(denied.status, 401, 'a wrong token is refused')
  t.equal(c.state.phase !== 'aborted', true)

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    timeout: 30_000
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const pageErrors: string[] = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(d.url)
  await page.locator('#phase', { hasText: /^waiting$/ }).waitFor({ timeout: 15_000 })
  t.match(await page.textContent('#service'), /order-service: v2 vs v1/)
  t.equal(await page.textContent('#weight'), '25%')
  t.match(await page.textContent('#convergence'), /rule 2 on 2 of 2/)

  const points = async () => Number(await page.getAttribute('#chart-share', 'data-points'))
  await page.waitForFunction('Number(document.getElementById("chart-share").dataset.points) >= 3', undefined, { timeout: 15_000 })
  const first = await points()
  await page.waitForFunction(`Number(document.getElementById("chart-share").dataset.points) > ${first}`, undefined, { timeout: 15_000 })
  t.ok((await points()) > first, 'the charts update')
  t.equal(await page.locator('#chart-share polyline').count(), 2, 'one line per lane')
  for (const chart of ['share', 'errors', 'p99']) {
    t.equal(await page.getAttribute(`#chart-${chart} polyline[data-lane="v1"]`, 'stroke'), '#2f6fde', `${chart}: the stable lane is blue`)
    t.equal(await page.getAttribute(`#chart-${chart} polyline[data-lane="v2"]`, 'stroke'), '#e8710a', `${chart}: the candidate is orange`)
    t.match(await page.textContent(`#chart-${chart} .x-span`), /^\d\d:\d\d:\d\d → \d\d:\d\d:\d\d UTC$/, `${chart}: the time axis says when`)
  }
  t.match(await page.textContent('#chart-share .y-top'), /^100 %$/)
  t.match(await page.textContent('#chart-errors .y-top'), / %$/, 'error rate in percent')
  t.match(await page.textContent('#chart-p99 .y-top'), / ms$/, 'latency in ms')
  t.equal(await page.locator('#instances tr').count(), 3, 'both instances listed with their rule version')

  await page.click('#abort')
  await page.locator('#msg', { hasText: /401|token/ }).waitFor({ timeout: 5000 })
  t.notOk(['aborted', 'rolled-back'].includes(c.state.phase), 'no token: nothing happens')

  await page.fill('#token', 'secret-token-1')
  await page.click('#pause')
  await page.locator('#phase', { hasText: /^paused$/ }).waitFor({ timeout: 10_000 })
  t.equal(c.state.phase, 'paused', 'pause from the page')
  await page.click('#resume')
  await page.locator('#phase', { hasText: /^waiting$/ }).waitFor({ timeout: 10_000 })
  t.equal(c.state.phase, 'waiting', 'resume from the page')
  await page.click('#abort')
  await page.locator('#phase', { hasText: /^aborted$/ }).waitFor({ timeout: 10_000 })
  t.equal((await c.done).phase, 'aborted')
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0, 'abort rolled the RuleSet back')
  await page.locator('#history', { hasText: /abort/ }).waitFor({ timeout: 5000 })
  await page.locator('#convergence', { hasText: /rule 3 on 2 of 2/ }).waitFor({ timeout: 10_000 })
  t.pass('the rollback\'s convergence shows after the end')
  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, 'canary-dashboard.png'), fullPage: true })

  // The process that served it ends: the page keeps the final state and says so.
  await d.close()
  await page.locator('#gone', { hasText: /stopped answering at \d\d:\d\d:\d\d UTC/ }).waitFor({ timeout: 10_000 })
  t.equal(await page.textContent('#phase'), 'aborted', 'the final state stays on the page')
  t.equal(await page.locator('#chart-share polyline').count(), 2, 'and its charts')
  t.same(pageErrors, [], 'no script error on the page')
})
