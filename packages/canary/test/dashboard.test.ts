// The dashboard in headless Debian Chromium (playwright-core): the page loads, the charts
// update, the shadow section lists the diverging routes a caller compared (the comparer's own
// figures), the token guards the buttons, abort rolls back. A screenshot is kept in
// test-artifacts/ (gitignored).
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import t from 'tap'
import { CanaryController, startDashboard } from '../src/index.ts'
import { candidateWeight, readRules } from '../src/internals.ts'
import { RULES, world } from './fixtures/world.ts'
import { startShadowGateway } from './fixtures/shadow-gateway.ts'

const ARTIFACTS = join(import.meta.dirname, '../../../test-artifacts')

t.test('the page loads, the charts update, abort (with the token) rolls back', async (t) => {
  const { dev, nacos } = await world(t)
  // A caller (an edge with a mirror rule) compares order-service's pairs in v2: a quarter differ in /tier.
  const gw = await startShadowGateway(t, { nacosAddr: dev.address, service: 'order-service', lane: 'v2' })
  gw.mirror(85, 0.25)
  gw.mirror(12, 0, '/users') // another route, none diverging: listed after /users/:id
  const c = await CanaryController.start({ service: 'order-service', candidate: 'v2', stable: 'v1', steps: [25, 50, 100], intervalMs: 60_000, minRequests: 20, callers: ['gateway'] }, { nacos, tickMs: 200 })
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

  // The shadow section: the comparer's figures, as `flowtag shadow report` reads them from /metrics.
  const [byId, list] = gw.comparer.report().routes
  t.ok(byId !== undefined && list !== undefined && byId.route === '/users/:id' && byId.diverged > 0, 'the comparer judged pairs of both routes')
  const row = page.locator('#shadow-routes tr[data-service="order-service"][data-route="/users/:id"][data-lane="v2"]')
  await row.waitFor({ timeout: 15_000 })
  t.equal(await page.getAttribute('#shadow-routes', 'data-routes'), '2', 'both compared routes listed')
  t.equal(await page.getAttribute('#shadow-routes tr[data-route]', 'data-route'), '/users/:id', 'the diverging route first')
  t.equal(await row.locator('.compared').textContent(), String(byId!.compared), 'pairs compared')
  t.equal(await row.locator('.share').textContent(), `${(byId!.divergence * 100).toFixed(1)} %`, 'the share that diverges, in %')
  t.equal(await row.locator('.field').count(), 1, 'one field differs beyond noise (the timestamp is learned noise)')
  t.equal(await row.locator('.field').getAttribute('data-field'), '/tier')
  t.equal(await row.locator('.field').getAttribute('data-count'), String(byId!.fields[0]!.count), 'with the pairs it differed in')
  t.equal(await row.locator('td:nth-child(3)').getAttribute('style'), 'color:#e8710a', 'the mirror lane in its lane colour (the candidate\'s orange)')
  t.notMatch(await page.textContent('#shadow'), /gold|silver/, 'no body value shown, only paths and counts')
  t.match(await page.textContent('#shadow-note'), /3 of 3 processes read/, 'order-service\'s two instances and the caller read')

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
