// The verdict for Argo Rollouts (web metric provider) and Flagger (webhooks), on the dashboard's
// server, against the documented request and response shapes: Argo reads a JSON field through
// `jsonPath` and compares it; Flagger posts its CanaryWebhookPayload and reads 200 / non-200.
import t, { type Test } from 'tap'

import { CanaryController, startDashboard, verdictOf, type CanaryState } from '../src/index.ts'
import { world } from './fixtures/world.ts'

const fast = { service: 'order-service', candidate: 'v2', stable: 'v1', intervalMs: 300, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000, judge: 'threshold' as const }

// Flagger's CanaryWebhookPayload: name, namespace, phase, checksum, metadata (key-value strings).
const flaggerPayload = { name: 'order-service', namespace: 'shop', phase: 'Progressing', checksum: '6d5b8c9f7', metadata: { service: 'order-service' } }

async function post (url: string, body: unknown): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

/** Argo's web provider: GET the URL, take `jsonPath` `{$.verdict}` of the JSON as `result`. */
async function argoResult (t: Test, base: string): Promise<unknown> {
  const res = await fetch(new URL('api/verdict?service=order-service', base))
  t.equal(res.headers.get('content-type'), 'application/json')
  return (await res.json() as { verdict: unknown }).verdict
}

t.test('no verdict yet: inconclusive for Argo; Flagger\'s confirm gates halt (403), its rollout check is not failed; an abort is a fail', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const c = await CanaryController.start({ ...fast, steps: [10, 100] }, { nacos, tickMs: 50 })
  t.teardown(() => c.close())
  const d = await startDashboard({ controller: c, nacos, token: 'secret-token' })
  t.teardown(() => d.close())
  t.equal(await argoResult(t, d.url), 'inconclusive', 'neither successCondition nor failureCondition holds: Argo counts it inconclusive')
  const v = await (await fetch(new URL('api/verdict', d.url))).json() as Record<string, unknown>
  t.match(v, { verdict: 'inconclusive', service: 'order-service', candidate: 'v2', stable: 'v1', steps: 2, reason: String, at: String })
  for (const hook of ['confirm-rollout', 'confirm-traffic-increase', 'confirm-promotion']) {
    const r = await post(new URL(`flagger/${hook}`, d.url).href, flaggerPayload)
    t.equal(r.status, 403, `${hook}: halts while inconclusive`)
    t.match(r.body, { verdict: 'inconclusive', approved: false, hook, canary: { name: 'order-service', namespace: 'shop', phase: 'Progressing' } })
  }
  t.equal((await post(new URL('flagger/rollout', d.url).href, flaggerPayload)).status, 200, 'rollout: inconclusive is no failed check')
  t.equal((await post(new URL('flagger/rollback', d.url).href, flaggerPayload)).status, 403, 'rollback: no reason to roll back')

  // the documented shape is checked: a field missing or of the wrong type is a 400 naming it
  const missing = await post(new URL('flagger/confirm-promotion', d.url).href, { name: 'order-service', phase: 'Progressing' })
  t.equal(missing.status, 400)
  t.match(missing.body, { code: 'FLOWTAG_CANARY_BAD_OPTION', error: /"namespace"/ })
  const badMeta = await post(new URL('flagger/confirm-promotion', d.url).href, { ...flaggerPayload, metadata: { service: 3 } })
  t.match(badMeta.body, { code: 'FLOWTAG_CANARY_BAD_OPTION', error: /"metadata\.service"/ })
  t.equal((await post(new URL('flagger/confirm-promotion', d.url).href, 'not json')).status, 400)
  t.equal((await post(new URL('flagger/confirm-promotion', d.url).href, JSON.stringify({ ...flaggerPayload, checksum: 'x'.repeat(70_000) }))).status, 400, 'a payload over 64 KiB')
  t.equal((await fetch(new URL('flagger/confirm-promotion', d.url))).status, 404, 'a GET is no Flagger hook')
  t.equal((await post(new URL('flagger/pre-rollout', d.url).href, flaggerPayload)).status, 404, 'a hook type it does not serve')
  const other = await post(new URL('flagger/confirm-promotion', d.url).href, { ...flaggerPayload, metadata: { service: 'user-service' } })
  t.equal(other.status, 403, 'another service\'s canary is never approved here')
  t.equal((await fetch(new URL('api/verdict?service=user-service', d.url))).status, 404)

  await c.command('abort', 'test')
  t.equal(await argoResult(t, d.url), 'fail', 'failureCondition result == "fail" holds')
  t.equal((await post(new URL('flagger/rollback', d.url).href, flaggerPayload)).status, 200, 'rollback: Flagger rolls back on 200')
  t.equal((await post(new URL('flagger/rollout', d.url).href, flaggerPayload)).status, 403, 'rollout: a failed check')
  t.equal((await post(new URL('flagger/confirm-promotion', d.url).href, flaggerPayload)).status, 403)
})

t.test('a promoted canary passes: Argo\'s successCondition holds, Flagger\'s gates approve; holds are inconclusive', async (t) => {
  const { nacos } = await world(t)
  const c = await CanaryController.start({ ...fast, steps: [50, 100] }, { nacos, tickMs: 50 })
  t.teardown(() => c.close())
  const d = await startDashboard({ controller: c, nacos })
  t.teardown(() => d.close())
  const end = await c.done
  t.equal(end.phase, 'promoted')
  t.equal(await argoResult(t, d.url), 'pass')
  for (const hook of ['confirm-rollout', 'confirm-promotion', 'rollout']) t.equal((await post(new URL(`flagger/${hook}`, d.url).href, flaggerPayload)).status, 200, `${hook}: approved`)
  t.equal((await post(new URL('flagger/rollback', d.url).href, flaggerPayload)).status, 403)

  // The same history, mid-canary: the last check passed, so a running canary passes too ...
  const running: CanaryState = { ...structuredClone(end), phase: 'analysing' }
  running.history = running.history.filter((e) => e.event !== 'promote')
  t.equal(verdictOf(running).verdict, 'pass')
  // ... but a person's or a hook's hold is not a pass, nor is a step before any check.
  t.equal(verdictOf({ ...running, phase: 'paused', pausedBy: 'user' }).verdict, 'inconclusive')
  t.equal(verdictOf({ ...running, phase: 'paused', pausedBy: 'hook' }).verdict, 'inconclusive')
  t.equal(verdictOf({ ...running, phase: 'waiting', history: running.history.filter((e) => e.event !== 'check') }).verdict, 'inconclusive')
  const failed = structuredClone(running)
  failed.history.push({ at: new Date().toISOString(), event: 'check', step: 2, weight: 100, ruleVersion: 3, message: 'check failed (1/2)', data: { verdict: 'fail' } })
  t.equal(verdictOf({ ...failed, phase: 'paused', pausedBy: 'analysis' }).verdict, 'fail', 'a failed check is a fail while the canary holds')
})
