// A canary's lifecycle as a user follows it, on loopback (Nacos dev server, fake instances, the
// CLI as its own process): start needs a candidate; rollback gives the user's RuleSet back; a user
// rule that decides first is said; promotion ends with the candidate as stable, the old lane's
// instances to retire, and the next canary starts from there; publish --force replaces an invalid
// document.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseRuleSet, evaluate, type RuleSet } from '@flowtag/rules'
import { runNode, waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { CanaryController, decidesFirst, promotedRuleSet, retireList } from '../src/index.ts'
import { CANARY_RULE, candidateWeight, readRules } from '../src/internals.ts'
import { startFakeInstance } from './fixtures/instances.ts'
import { baseRules, RULES, world } from './fixtures/world.ts'

const BIN = join(import.meta.dirname, '../src/bin.ts')
const fast = { service: 'order-service', candidate: 'v2', stable: 'v1', intervalMs: 300, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000, judge: 'threshold' as const }

t.test('start refuses a canary whose candidate has no instance in Nacos, naming the lanes it has', async (t) => {
  const { dev, nacos } = await world(t, { traffic: false })
  await t.rejects(CanaryController.start({ ...fast, candidate: 'v3' }, { nacos }), { code: 'FLOWTAG_CANARY_NO_CANDIDATE', message: /"order-service" in the candidate lane "v3".*lanes seen: v1, v2/ })
  await t.rejects(CanaryController.start({ ...fast, service: 'nobody' }, { nacos }), { code: 'FLOWTAG_CANARY_NO_CANDIDATE', message: /no instance at all/ })
  t.equal(await nacos.config.get('flowtag-canary.order-service.json', 'FLOWTAG'), undefined, 'no state was written')
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-nocandidate-'))
  await writeFile(join(dir, 'spec.json'), JSON.stringify({ ...fast, candidate: 'v3' }))
  const r = await runNode(t, BIN, { args: ['--nacos', dev.address, 'canary', 'start', join(dir, 'spec.json')] }, 30_000)
  t.equal(r.code, 1, 'the CLI: exit 1')
  t.match(r.stderr, /no instance of "order-service" in the candidate lane "v3".*\(FLOWTAG_CANARY_NO_CANDIDATE\)$/m, 'the code is said')
  const json = await runNode(t, BIN, { args: ['--nacos', dev.address, '--json', 'canary', 'start', join(dir, 'spec.json')] }, 30_000)
  t.match(JSON.parse(json.stdout.trim().split('\n').at(-1)!), { code: 'FLOWTAG_CANARY_NO_CANDIDATE', exitCode: 1 }, '--json keeps the code')
})

t.test('a user rule that decides every request first: the step and its waits say so; abort gives the rules back exactly', async (t) => {
  const { nacos } = await world(t, { traffic: false })
  const user = { ...baseRules, version: 7, rules: [...baseRules.rules, { name: 'everyone-to-v1', when: {}, lane: 'v1' }] }
  await nacos.config.publish(RULES.dataId, RULES.group, JSON.stringify(user), 'json')
  const c = await CanaryController.start(fast, { nacos, tickMs: 50 })
  t.teardown(() => c.close())
  await waitFor('a wait in the history', () => c.state.history.some((e) => e.event === 'wait'), 30_000, 50)
  t.match(c.state.history.find((e) => e.event === 'step')?.message, /rule "everyone-to-v1" decides every request before the canary's split: no request can reach v2/)
  const wait = c.state.history.find((e) => e.event === 'wait')!
  t.match(wait.message, /^waiting, but rule "everyone-to-v1" decides every request/, 'not just "0 of 20"')
  t.equal(c.state.blockedBy, 'everyone-to-v1')
  await c.command('abort', 'test')
  const rules = await readRules(nacos, { rules: RULES })
  t.same(rules, { ...parseRuleSet(JSON.stringify(user), 'user'), version: 9 }, 'the user\'s rules, the catch-all and the testers rule, are back exactly')
})

t.test('decidesFirst: only an enabled, unexpired catch-all ahead of every route to the candidate blocks it', async (t) => {
  const rs = (rules: unknown[]): RuleSet => parseRuleSet(JSON.stringify({ version: 1, rules, default: 'v1' }), 'x')
  t.equal(decidesFirst(rs([{ name: 'all', lane: 'v1' }, { name: 'c', split: { weights: { v2: 10 } } }]), 'v2'), 'all')
  t.equal(decidesFirst(rs([{ name: 'c', split: { weights: { v2: 10 } } }, { name: 'all', lane: 'v1' }]), 'v2'), undefined)
  t.equal(decidesFirst(rs([{ name: 'all', enabled: false, lane: 'v1' }, { name: 'c', split: { weights: { v2: 10 } } }]), 'v2'), undefined)
  t.equal(decidesFirst(rs([{ name: 'all', lane: 'v1', expiresAt: '2000-01-01T00:00:00Z' }, { name: 'c', split: { weights: { v2: 10 } } }]), 'v2'), undefined)
  t.equal(decidesFirst(rs([{ name: 'some', when: { headers: { a: { equals: 'b' } } }, lane: 'v1' }, { name: 'c', split: { weights: { v2: 10 } } }]), 'v2'), undefined)
  t.equal(decidesFirst(rs([{ name: 'testers', when: { headers: { t: { equals: '1' } } }, lane: 'v2' }, { name: 'all', lane: 'v1' }, { name: 'c', split: { weights: { v2: 10 } } }]), 'v2'), 'all', 'a testers rule brings only its own requests')
  t.equal(decidesFirst(rs([{ name: 'all', lane: 'v2' }]), 'v2'), undefined, 'a catch-all to the candidate')
  t.equal(decidesFirst(rs([{ name: 'split', split: { weights: { v3: 10 } } }, { name: 'c', split: { weights: { v2: 10 } } }]), 'v2'), 'split', 'a catch-all split without the candidate decides too')
})

t.test('promotedRuleSet: a service not declared yet, and weights of the old lane dropped', async (t) => {
  const target = { service: 'order-service', candidate: 'v2', stable: 'v1' }
  const bare = parseRuleSet(JSON.stringify({ version: 1, rules: [], default: 'v1' }), 'x')
  t.same(promotedRuleSet(bare, target, 2).services['order-service'], { stable: 'v2', candidates: [], strict: false })
  const weighted = parseRuleSet(JSON.stringify({ version: 1, services: { 'order-service': { stable: 'v1', candidates: ['v2', { lane: 'v3', expiresAt: '2999-01-01T00:00:00Z' }], weights: { v1: 90, v2: 10 } } }, rules: [], default: 'v1' }), 'x')
  const p = promotedRuleSet(weighted, target, 2)
  t.same(p.services['order-service'], { stable: 'v2', candidates: [{ lane: 'v3', expiresAt: '2999-01-01T00:00:00Z' }], strict: false, weights: { v2: 10 } })
  t.doesNotThrow(() => parseRuleSet(JSON.stringify(p), 'promoted'), 'the promoted RuleSet is valid')
  const onlyOld = parseRuleSet(JSON.stringify({ version: 1, services: { 'order-service': { stable: 'v1', candidates: ['v2'], weights: { v1: 100 } } }, rules: [], default: 'v1' }), 'x')
  t.equal(promotedRuleSet(onlyOld, target, 2).services['order-service']?.weights, undefined, 'no weight entry left: none')
})

t.test('promotedRuleSet and retireList of a lane: every service of the lane, named', async (t) => {
  const rs = parseRuleSet(JSON.stringify({ version: 1, services: { 'order-service': { stable: 'v1', candidates: ['v2'] }, 'user-service': { stable: 'v1', candidates: ['v2'] }, billing: { stable: 'v1' } }, rules: [], default: 'v1' }), 'x')
  const p = promotedRuleSet(rs, { lane: 'v2', services: ['order-service', 'user-service'], candidate: 'v2', stable: 'v1' }, 2)
  t.same([p.services['order-service']?.stable, p.services['user-service']?.stable, p.services.billing?.stable], ['v2', 'v2', 'v1'], 'the lane\'s services only')
  const instances = [
    { service: 'order-service', instance: '10.0.0.1:80', lane: 'v1' },
    { service: 'user-service', instance: '10.0.0.2:80', lane: 'v1' },
    { service: 'user-service', instance: '10.0.0.3:80', lane: 'v2' },
    { service: 'billing', instance: '10.0.0.4:80', lane: 'v1' }
  ]
  t.same(retireList(instances, 'lane:v2', 'v1', ['order-service', 'user-service']), { service: 'lane:v2', lane: 'v1', instances: ['order-service 10.0.0.1:80', 'user-service 10.0.0.2:80'] })
  t.same(retireList(instances, 'billing', 'v1'), { service: 'billing', lane: 'v1', instances: ['10.0.0.4:80'] }, 'one service: its addresses alone')
})

t.test('promotion ends with the candidate as the stable lane and the old instances to retire; the next canary starts from there', async (t) => {
  const { dev, nacos, v1 } = await world(t)
  const c = await CanaryController.start({ ...fast, steps: [50, 100] }, { nacos, tickMs: 50 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'promoted')
  const promoted = await readRules(nacos, { rules: RULES })
  t.same(promoted.services['order-service'], { stable: 'v2', candidates: [], strict: false }, 'v2 is the stable lane; v1 is no longer declared')
  t.equal(candidateWeight(promoted, 'v2'), 100)
  t.match(promoted.rules.find((r) => r.name === CANARY_RULE)?.split, { weights: { v2: 100 }, rest: 'v2' })
  t.equal(evaluate(promoted, { headers: {}, cookies: {}, query: {}, ip: '10.0.0.1' }).tag, 'v2', 'an ordinary request is decided into v2')
  t.equal(end.retire?.lane, 'v1')
  t.equal(end.retire?.instances.length, 1, 'the v1 instance is listed')
  t.match(end.history.at(-1)?.message, /makes v2 the stable lane of order-service; ready to retire: 1 v1 instance/)

  const status = await runNode(t, BIN, { args: ['--nacos', dev.address, 'canary', 'status', 'order-service'] }, 30_000)
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /left to do: v2 is the stable lane of order-service; retire its 1 v1 instance\(s\) \(127\.0\.0\.1:\d+\)/)
  await v1.close()

  // A v3 canary against the new stable lane: its first step reuses the promoted split.
  const v3 = await startFakeInstance({ nacosAddr: dev.address, service: 'order-service', lane: 'v3' })
  t.teardown(() => v3.close())
  const next = await CanaryController.start({ ...fast, candidate: 'v3', stable: 'v2', steps: [10, 100] }, { nacos, tickMs: 50 })
  t.teardown(() => next.close())
  await waitFor('the next canary at its first step', () => next.state.step >= 0, 30_000, 50)
  const step = await readRules(nacos, { rules: RULES })
  t.equal(candidateWeight(step, 'v3'), 10)
  t.equal(decidesFirst(step, 'v3'), undefined, 'nothing decides ahead of the new canary')
  t.match(step.rules.find((r) => r.name === CANARY_RULE)?.split, { weights: { v3: 10 }, rest: 'v2' })
  t.equal(step.rules.filter((r) => r.name === CANARY_RULE).length, 1, 'no second canary rule appended')
  t.same(step.services['order-service'], { stable: 'v2', candidates: ['v3'], strict: false })
  await next.command('abort', 'test')
  t.same(await readRules(nacos, { rules: RULES }), { ...promoted, version: promoted.version + 2 }, 'its abort gives back the promoted RuleSet')
})

t.test('rules publish --force replaces an invalid document in Nacos and says so; without it, it says why not', async (t) => {
  const { dev, nacos } = await world(t, { traffic: false })
  await nacos.config.publish(RULES.dataId, RULES.group, '{"version": 3, "rules": [{"name": "x"}]', 'json')
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-force-'))
  const file = join(dir, 'rules.json')
  await writeFile(file, JSON.stringify({ ...baseRules, version: 2 }))
  let r = await runNode(t, BIN, { args: ['--nacos', dev.address, 'rules', 'publish', file] }, 30_000)
  t.equal(r.code, 4, 'refused without --force')
  t.match(r.stderr, /FLOWTAG\/flowtag-rules\.json: the document in force is invalid \(.+\); instances keep their last good RuleSet\. Pass --force \(force: true\) to replace it/)
  r = await runNode(t, BIN, { args: ['--nacos', dev.address, 'rules', 'diff', file] }, 30_000)
  t.equal(r.code, 0)
  t.match(r.stderr, /is invalid .*against an empty RuleSet/)
  r = await runNode(t, BIN, { args: ['--nacos', dev.address, 'rules', 'publish', file, '--force', '--json'] }, 30_000)
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(r.stdout), { published: 2, replacedInvalid: String })
  t.same(await readRules(nacos, { rules: RULES }), parseRuleSet(JSON.stringify({ ...baseRules, version: 2 }), 'x'))
})
