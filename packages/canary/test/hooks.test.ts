// Step hooks on loopback: real HTTP servers answer continue / pause / abort, fail, answer garbage
// or never answer; the controller runs against the Nacos dev server and fake instances.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { parseRuleSet } from '@flowtag/rules'
import { askHook, CanaryController, parseCanarySpec, StateStore, type HookRequest } from '../src/index.ts'
import { readRules } from '../src/internals.ts'
import { baseRules, RULES, world } from './fixtures/world.ts'

const fast = { service: 'order-service', candidate: 'v2', stable: 'v1', intervalMs: 300, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000, judge: 'threshold' as const }

type Answer = (body: HookRequest, req: IncomingMessage, res: ServerResponse) => void

/** A hook server on loopback; `answer` decides each reply; every request body is kept. */
async function hookServer (t: { teardown (fn: () => unknown): void }, answer: Answer) {
  const seen: HookRequest[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d })
    req.on('end', () => {
      const parsed = JSON.parse(body) as HookRequest
      seen.push(parsed)
      answer(parsed, req, res)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); return new Promise((resolve) => server.close(resolve)) })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, seen }
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(typeof body === 'string' ? body : JSON.stringify(body))
}

const request: HookRequest = {
  hook: 'before-step',
  canary: { service: 's', candidate: 'v2', stable: 'v1', phase: 'converging', startedAt: new Date().toISOString() },
  step: { index: 1, of: 3, weight: 10, ruleVersion: null },
  message: 'start'
}

t.test('askHook: the three outcomes as answered; every failure is a pause, never a pass', async (t) => {
  for (const outcome of ['continue', 'pause', 'abort'] as const) {
    const h = await hookServer(t, (_b, _q, res) => json(res, 200, { outcome, message: 'said so' }))
    t.same(await askHook(h.url, request, 30_000), { outcome, reason: `hook before-step answered ${outcome}: said so` })
    t.same(h.seen[0], request, 'the hook gets the documented body')
  }
  const cases: Array<[string, Answer, RegExp]> = [
    ['an error status', (_b, _q, res) => json(res, 500, { outcome: 'continue' }), /answered HTTP 500: pausing/],
    ['a body that is not JSON', (_b, _q, res) => json(res, 200, 'ok!'), /answered no JSON/],
    ['JSON without a valid outcome', (_b, _q, res) => json(res, 200, { outcome: 'go' }), /no valid outcome/],
    ['an empty 204', (_b, _q, res) => { res.writeHead(204); res.end() }, /answered no JSON/],
    ['an answer over 64 KiB', (_b, _q, res) => json(res, 200, JSON.stringify({ outcome: 'continue', message: 'x'.repeat(70_000) })), /answered no JSON \("<answer over 64 KiB>"\)/],
    ['no answer in time', () => {}, /no answer within 300 ms/]
  ]
  for (const [what, answer, why] of cases) {
    const h = await hookServer(t, answer)
    // only the silent hook is given a short time: the others answer, however loaded the machine
    const r = await askHook(h.url, request, what === 'no answer in time' ? 300 : 30_000)
    t.equal(r.outcome, 'pause', `${what}: pause`)
    t.match(r.reason, why, what)
  }
  // a port nothing listens on: a server's port, once it is closed
  const gone = createServer()
  gone.listen(0, '127.0.0.1')
  await once(gone, 'listening')
  const port = (gone.address() as AddressInfo).port
  await new Promise((resolve) => gone.close(resolve))
  const r = await askHook(`http://127.0.0.1:${port}/hook`, request, 30_000)
  t.equal(r.outcome, 'pause', 'a refused connection pauses')
})

t.test('the spec validates the hooks with coded errors naming the field', async (t) => {
  t.throws(() => parseCanarySpec({ ...fast, hooks: { beforeStep: 'not a url' } }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /hooks\.beforeStep/ })
  t.throws(() => parseCanarySpec({ ...fast, hooks: { timeoutMs: 0 } }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /hooks\.timeoutMs/ })
  t.throws(() => parseCanarySpec({ ...fast, hooks: { before: 'http://x/' } }), { code: 'FLOWTAG_CANARY_BAD_OPTION', message: /hooks/ })
  t.equal(parseCanarySpec(fast).hooks.timeoutMs, 5000, 'default timeout')
})

t.test('a before-step hook that pauses holds the first step until it says continue; it is asked before every step', async (t) => {
  const { nacos } = await world(t)
  let pauses = 2
  const h = await hookServer(t, (b, _q, res) => {
    if (b.hook === 'before-step' && b.step.index === 1 && pauses-- > 0) json(res, 200, { outcome: 'pause', message: 'change freeze' })
    else json(res, 200, { outcome: 'continue' })
  })
  const c = await CanaryController.start({ ...fast, steps: [20, 100], hooks: { beforeStep: h.url, afterStep: h.url } }, { nacos, tickMs: 50 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'promoted')
  const pause = end.history.find((e) => e.event === 'pause')!
  t.match(pause.message, /before step 1: hook before-step answered pause: change freeze/)
  t.ok(end.history.findIndex((e) => e.event === 'pause') < end.history.findIndex((e) => e.event === 'step'), 'nothing was published while it paused')
  t.same(h.seen.map((b) => `${b.hook}:${b.step.index}`), ['before-step:1', 'before-step:1', 'before-step:1', 'after-step:1', 'before-step:2', 'after-step:2'], 'asked again each interval, then before and after each step')
  t.equal(h.seen[3]!.canary.service, 'order-service')
  t.equal(h.seen[4]!.step.weight, 100, 'before-step names the weight about to be published')
})

t.test('an after-step hook that answers garbage pauses (never passes); a person\'s resume answers for it', async (t) => {
  const { nacos } = await world(t)
  const h = await hookServer(t, (_b, _q, res) => json(res, 200, '<html>proxy error</html>'))
  const c = await CanaryController.start({ ...fast, steps: [20, 100], hooks: { afterStep: h.url, timeoutMs: 30_000 } }, { nacos, tickMs: 50 })
  t.teardown(() => c.close())
  await waitFor('paused by the hook', () => c.state.phase === 'paused' && c.state.pausedBy === 'hook', 30_000, 50)
  t.equal(c.state.step, 0, 'held at the first step')
  t.match(c.state.history.at(-1)?.message, /answered no JSON.*asking again every interval/)
  while (h.seen.length < 3) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(c.state.step, 0, 'still held after asking again')
  await c.command('resume', 'test')
  while (c.state.step < 1) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(c.state.step, 1, 'the person\'s resume moved it on')
  await c.command('abort', 'test')
})

t.test('a hook that answers abort aborts; the abort hook is told and the RuleSet before the canary comes back', async (t) => {
  const { nacos } = await world(t)
  const h = await hookServer(t, (b, _q, res) => json(res, 200, { outcome: b.hook === 'after-step' ? 'abort' : 'continue', message: 'smoke test failed' }))
  const c = await CanaryController.start({ ...fast, steps: [20, 100], hooks: { afterStep: h.url, onAbort: h.url } }, { nacos, tickMs: 50 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'aborted')
  t.match(end.history.find((e) => e.event === 'abort')?.message, /aborted: hook after-step answered abort: smoke test failed/)
  const abortCall = h.seen.find((b) => b.hook === 'abort')
  t.ok(abortCall, 'the abort hook was called')
  t.match(abortCall?.message, /smoke test failed/)
  t.match(end.history.at(-1)?.message, /hook abort answered continue.*the rollback stands/)
  const rules = await readRules(nacos, { rules: RULES })
  t.same(rules, { ...parseRuleSet(JSON.stringify(baseRules), 'base'), version: rules.version }, 'the user\'s RuleSet is back')
})

t.test('a canary saved before hooks existed resumes and rolls back without them', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const first = await CanaryController.start({ ...fast, intervalMs: 60_000 }, { nacos, tickMs: 50 })
  while (first.state.step < 0) await new Promise((resolve) => setTimeout(resolve, 50))
  await first.close()
  const store = new StateStore(nacos.config, 'FLOWTAG')
  const old = (await store.load('order-service'))!
  delete (old.spec as { hooks?: unknown }).hooks
  delete old.before
  await store.save(old)
  const second = await CanaryController.resume('order-service', { nacos, tickMs: 50 })
  t.teardown(() => second.close())
  await second.command('abort', 'test')
  const end = await second.done
  t.equal(end.phase, 'aborted')
  t.match(end.history.find((e) => e.event === 'abort')?.message, /sends no request to v2/, 'without the RuleSet before it, the candidate\'s routes are removed as before')
  t.equal((await readRules(nacos, { rules: RULES })).rules.find((r) => r.name === 'testers')?.enabled, false)
})
