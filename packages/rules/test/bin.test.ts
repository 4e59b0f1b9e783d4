import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { doc } from './fixtures/doc.ts'

const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url))

function run (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
    })
  })
}

t.test('flowtag-rules validate', async (t) => {
  const dir = t.testdir({
    'good.json': doc(3),
    'bad.json': JSON.stringify({ version: 1, rules: [{ name: 'a', when: { ip: ['10.0.0.0/99'] }, lane: 'v2' }], default: 'bad lane' }),
    'broken.json': '{ "version": '
  })
  const ok = await run(['validate', join(dir, 'good.json')])
  t.equal(ok.code, 0)
  t.match(ok.stdout, /valid \(version 3, 1 rules, 1 services, default lane v1\)/)

  const bad = await run(['validate', join(dir, 'bad.json')])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /invalid rule set/)
  t.match(bad.stderr, /rules\.0\.when\.ip\.0: not a valid IPv4\/IPv6 address or CIDR/)
  t.match(bad.stderr, /default: must be 1-64 characters/)

  const broken = await run(['validate', join(dir, 'broken.json')])
  t.equal(broken.code, 1)
  t.match(broken.stderr, /\(root\): not JSON/)

  t.equal((await run(['validate', join(dir, 'nope.json')])).code, 2, 'unreadable file')
  t.equal((await run([])).code, 2, 'no command')
  t.equal((await run(['check', 'x'])).code, 2, 'unknown command')
  t.equal((await run(['validate', 'a', 'b'])).code, 2, 'extra arguments')
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /usage: flowtag-rules validate <doc>/)
})

t.test('flowtag-rules explain', async (t) => {
  const dir = t.testdir({
    'rules.json': JSON.stringify({
      version: 4,
      user: { cookie: 'uid' },
      rules: [
        { name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' },
        { name: 'office', when: { ip: ['10.0.0.0/8'] }, lane: 'v3' },
        { name: 'vip', when: { users: ['alice'] }, lane: 'v4' },
        { name: 'preview', when: { query: { p: { exists: true } } }, lane: 'v5' }
      ],
      default: 'v1'
    })
  })
  const file = join(dir, 'rules.json')
  const a = await run(['explain', file, '--header', 'X-Tester=yes'])
  t.equal(a.code, 0)
  t.match(a.stdout, /^lane v2: rule "testers" matched \(version 4\)\n {2}match rules\.0 testers: header x-tester equals "yes"/)
  t.match((await run(['explain', file, '--ip', '10.1.2.3'])).stdout, /lane v3[\s\S]*skip {2}rules\.0 testers: header x-tester equals "yes": absent/)
  t.match((await run(['explain', file, '--cookie', 'uid=alice'])).stdout, /lane v4/)
  t.match((await run(['explain', file, '--query', 'p=1'])).stdout, /lane v5/)
  t.match((await run(['explain', file])).stdout, /lane v1: no rule matched: default lane/)
  t.equal((await run(['explain', file, '--header'])).code, 2, 'missing value')
  t.equal((await run(['explain', file, '--header', 'novalue'])).code, 2, 'not name=value')
  t.equal((await run(['explain', file, '--bogus', 'a=b'])).code, 2, 'unknown option')
  t.equal((await run(['explain', join(dir, 'missing.json')])).code, 2)
})

t.test('flowtag-rules validate --now refuses a lapsed lease; lease renews and clears it in the file', async (t) => {
  const rules = {
    version: 5,
    services: { 'user-service': { stable: 'v1', candidates: [{ lane: 'v2', expiresAt: '2026-06-01T00:00:00Z' }] } },
    rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2', expiresAt: '2026-06-01T00:00:00Z' }],
    default: 'v1'
  }
  const dir = t.testdir({ 'rules.json': JSON.stringify(rules) })
  const file = join(dir, 'rules.json')
  t.equal((await run(['validate', file, '--now', '2026-05-01T00:00:00Z'])).code, 0)
  const late = await run(['validate', file, '--now', '2026-06-01T00:00:00Z'])
  t.equal(late.code, 1)
  t.match(late.stderr, /refused \(FLOWTAG_RULES_LEASE_EXPIRED\)/)
  t.match(late.stderr, /rules\.0\.expiresAt: lease of rule "testers" ran out/)
  t.match(late.stderr, /services\.user-service\.candidates\.0\.expiresAt/)
  t.equal((await run(['validate', file, '--now', 'soon'])).code, 2, 'bad --now')

  // One publish policy (checkPublish): a lapsed lease carried over unchanged routes nothing new, so
  // renewing another one is not refused; a lapsed lease set now is.
  const past = await run(['lease', file, 'testers', '--until', '2026-06-01T12:00:00Z', '--now', '2026-06-02T00:00:00Z'])
  t.equal(past.code, 1, 'a lease set in the past is refused')
  t.match(past.stderr, /refused \(FLOWTAG_RULES_LEASE_EXPIRED\)[\s\S]*rules\.0\.expiresAt/)
  t.notMatch(past.stderr, /services\.user-service/, 'the lapsed lease carried over is not named')
  t.equal(JSON.parse(await readFile(file, 'utf8')).version, 5, 'file untouched')
  const renew = await run(['lease', file, 'testers', '--until', '2026-07-01T00:00:00Z', '--now', '2026-06-02T00:00:00Z'])
  t.equal(renew.code, 0, renew.stderr)
  t.match(renew.stdout, /testers: lease until 2026-07-01T00:00:00Z \(version 6\)/)
  t.equal((await run(['lease', file, 'user-service:v2', '--clear', '--now', '2026-06-02T00:00:00Z'])).code, 0)
  const after = JSON.parse(await readFile(file, 'utf8'))
  t.equal(after.version, 7)
  t.same(after.services['user-service'].candidates, ['v2'])
  t.equal(after.rules[0].expiresAt, '2026-07-01T00:00:00Z')
  t.equal((await run(['lease', file, 'testers'])).code, 2, 'needs --until or --clear')
  t.equal((await run(['lease', file, 'nobody', '--clear'])).code, 1, 'no such rule')
})

t.test('flowtag-rules publish to Nacos, shadow report from /metrics, promote', async (t) => {
  const nacos = await startNacosDevServer({ port: 0 })
  t.teardown(() => nacos.close())
  const metrics = createServer((req, res) => {
    res.end([
      '# TYPE flowtag_context_shadow_decisions_total counter',
      'flowtag_context_shadow_decisions_total{live_lane="v1",shadow_lane="v1",shadow_rule="canary",live_version="1",shadow_version="2"} 700',
      'flowtag_context_shadow_decisions_total{live_lane="v1",shadow_lane="v2",shadow_rule="canary",live_version="1",shadow_version="2"} 200',
      'flowtag_context_shadow_decisions_total{live_lane="v2",shadow_lane="v2",shadow_rule="testers",live_version="1",shadow_version="2"} 100',
      'flowtag_context_shadow_decisions_total{live_lane="v2",shadow_lane="v1",shadow_rule="canary",live_version="0",shadow_version="2"} 999',
      ''
    ].join('\n'))
  })
  await new Promise<void>((resolve) => metrics.listen(0, '127.0.0.1', resolve))
  t.teardown(() => metrics.close())
  const live = (split: number) => ({
    version: 1,
    user: { header: 'x-user-id' },
    rules: [
      { name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' },
      { name: 'canary', split: { weights: { v2: split }, rest: 'v1' } }
    ],
    default: 'v1'
  })
  const dir = t.testdir({ 'rules.json': JSON.stringify({ ...live(10), shadow: { ...live(30), version: 2 } }) })
  const target = `nacos://${nacos.address}/FLOWTAG/rules.json`
  const pub = await run(['publish', join(dir, 'rules.json'), target])
  t.equal(pub.code, 0, pub.stderr)
  t.match(pub.stdout, /published to nacos FLOWTAG\/rules.json \(version 1, 2 rules, 0 services, default lane v1, shadow version 2\)/)
  // The one publish policy: the same version again is refused (the document untouched), --force publishes it.
  const same = await run(['publish', join(dir, 'rules.json'), target])
  t.equal(same.code, 1)
  t.match(same.stderr, /refused \(FLOWTAG_RULES_PUBLISH_REFUSED\)\n {2}version: 1 is not above 1, the version in force/)
  const forced = await run(['publish', join(dir, 'rules.json'), target, '--force'])
  t.equal(forced.code, 0, forced.stderr)

  const report = await run(['shadow', target, '--metrics', `http://127.0.0.1:${(metrics.address() as AddressInfo).port}/metrics`])
  t.equal(report.code, 0, report.stderr)
  t.match(report.stdout, /shadow version 2 next to live version 1: 1000 requests counted/)
  t.match(report.stdout, /rule "canary": the shadow would move 20\.0% of requests from v1 to v2, 0\.0% from v2 to v1/)
  t.match(report.stdout, /rule "testers": decides 10\.0% of requests, all in the lane they have now/)
  t.match(report.stdout, /in all: the shadow would move 20\.0% of requests to another lane/)

  const promoted = await run(['promote', target])
  t.equal(promoted.code, 0, promoted.stderr)
  t.match(promoted.stdout, /shadow promoted to live .*version 3/)
  const now = await run(['explain', target, '--header', 'x-tester=yes'])
  t.match(now.stdout, /lane v2: rule "testers" matched \(version 3\)/)
  const again = await run(['promote', target])
  t.equal(again.code, 1, 'no shadow left to promote')
  t.equal((await run(['shadow', target, '--metrics', 'http://127.0.0.1:1/metrics'])).code, 1, 'no shadow to report on')
})

t.test('flowtag-rules validate warns, without refusing, about a keyless split, a too-fine weight and an undeclared lane', async (t) => {
  const file = join(t.testdir({
    'doc.json': JSON.stringify({
      version: 4,
      services: { 'order-service': { stable: 'v1', candidates: ['v2'] } },
      rules: [
        { name: 'half', split: { weights: { v2: 12.345 } } },
        { name: 'qa', when: { headers: { 'x-qa': { equals: '1' } } }, lane: 'v3' }
      ],
      default: 'v1'
    })
  }), 'doc.json')
  const r = await run(['validate', file])
  t.equal(r.code, 0, 'warnings never refuse')
  t.match(r.stdout, /valid \(version 4/)
  t.match(r.stderr, /warning: rules\.0\.split: no key/)
  t.match(r.stderr, /warning: rules\.0\.split\.weights\.v2: weight 12\.345 is finer than a split can express \(0\.01%\): it counts as 12\.35%/)
  t.match(r.stderr, /warning: rules\.1\.lane: lane "v3" is not declared by any service/)
  const clean = await run(['validate', join(t.testdir({ 'good.json': doc(3) }), 'good.json')])
  t.equal(clean.stderr, '', 'a set without surprises prints no warning')
})
