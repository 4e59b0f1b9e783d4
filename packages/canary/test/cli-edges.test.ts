// The flowtag CLI's other answers, each as its own process against the Nacos dev server: usage
// errors, unreachable Nacos, bad specs, a controller stopped and taken over (with its dashboard),
// a command no controller applies, and `status --watch` following a canary to its end.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, runNode, startNode, exitOf, unique, waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { StateStore } from '../src/index.ts'
import { baseRules, world } from './fixtures/world.ts'

const BIN = join(import.meta.dirname, '../src/bin.ts')

function cli (t: { teardown (fn: () => unknown): void }, addr: string, args: string[]) {
  return runNode(t, BIN, { args: ['--nacos', addr, ...args] }, 30_000)
}

/** A started CLI process with its output collected as it comes. */
function started (t: { teardown (fn: () => unknown): void }, addr: string, args: string[]) {
  const child = startNode(t, BIN, { args: ['--nacos', addr, ...args] })
  const io = { stdout: '', stderr: '' }
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { io.stdout += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { io.stderr += d })
  return { child, io, exit: () => exitOf(child, `flowtag ${args.join(' ')}`, 30_000) }
}

t.test('usage errors exit 2 without touching Nacos; an unreachable Nacos exits 3', async (t) => {
  const nowhere = `127.0.0.1:${await freePort()}`
  let r = await cli(t, nowhere, ['--bogus'])
  t.equal(r.code, 2, 'unknown option')
  t.match(r.stderr, /Unknown option '--bogus'/)
  t.match(r.stderr, /usage: flowtag/)
  r = await cli(t, nowhere, [])
  t.equal(r.code, 2, 'no command')
  t.match(r.stdout, /^usage: flowtag/)
  r = await cli(t, nowhere, ['--help'])
  t.equal(r.code, 0, '--help')
  t.match(r.stdout, /exit codes:/)
  for (const args of [['canary', 'frob', 'x'], ['instances'], ['canary', 'status'], ['canary', 'pause'], ['canary', 'start', '--resume'], ['rules', 'validate']]) {
    r = await cli(t, nowhere, [...args, '--json'])
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    t.equal(JSON.parse(r.stdout).exitCode, 2, 'the JSON error says so too')
  }
  r = await cli(t, nowhere, ['rules', 'get', '--json'])
  t.equal(r.code, 3, 'Nacos unreachable: exit 3')
  t.match(JSON.parse(r.stdout), { code: 'FLOWTAG_NACOS_UNREACHABLE', exitCode: 3 })
  t.match(r.stderr, /^flowtag: no Nacos server reachable/)
})

t.test('rules: missing, unchanged, forced; bad specs and conflicts on canary start', async (t) => {
  const { dev } = await world(t, { traffic: false })
  const addr = dev.address
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-cli-edges-'))
  const same = join(dir, 'same.json')
  await writeFile(same, JSON.stringify(baseRules))

  let r = await cli(t, addr, ['rules', 'get', '--data-id', unique('none')])
  t.equal(r.code, 1, 'no RuleSet: exit 1')
  t.match(r.stderr, /no RuleSet at FLOWTAG\/none-/)
  r = await cli(t, addr, ['rules', 'diff', same])
  t.equal(r.code, 0)
  t.equal(r.stdout, 'no change\n')
  r = await cli(t, addr, ['rules', 'publish', same])
  t.equal(r.code, 4, 'the same version: refused')
  t.match(r.stderr, /version 1 is not above the one in force \(1\); bump it or pass --force/)
  // The one publish policy (checkPublish): a lease that has already run out is refused, --force or not.
  const lapsed = join(dir, 'lapsed.json')
  await writeFile(lapsed, JSON.stringify({ ...baseRules, version: 2, rules: [{ name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2', expiresAt: '2020-01-01T00:00:00Z' }] }))
  for (const extra of [[], ['--force']]) {
    r = await cli(t, addr, ['rules', 'publish', lapsed, ...extra])
    t.equal(r.code, 1, `a lapsed lease: refused (invalid input) ${extra.join(' ')}`)
    t.match(r.stderr, /lease already ran out at publish time .*rules\.0\.expiresAt: lease of rule "testers" ran out at 2020-01-01T00:00:00Z/)
  }
  r = await cli(t, addr, ['rules', 'validate', lapsed])
  t.equal(r.code, 1, 'validate refuses a lapsed lease too, as flowtag-rules validate')
  t.match(r.stderr, /lapsed\.json: lease already ran out at/)
  r = await cli(t, addr, ['rules', 'publish', same, '--force'])
  t.equal(r.code, 0, '--force publishes it anyway')
  t.match(r.stdout, /published version 1 \(0 changes\) to FLOWTAG\/flowtag-rules\.json/)
  r = await cli(t, addr, ['rules', 'validate', same])
  t.equal(r.stdout, 'valid: version 1, 1 rules, 1 services\n')

  r = await cli(t, addr, ['instances', 'order-service', '--data-id', unique('none')])
  t.equal(r.code, 0)
  t.match(r.stdout, /^rule version in force: -\n/)
  t.match(r.stdout, /order-service\s+127\.0\.0\.1:\d+\s+v1 /)
  t.match(r.stdout, /order-service\s+127\.0\.0\.1:\d+\s+v2 /)

  const notJson = join(dir, 'not-json.json')
  await writeFile(notJson, '{ service: ')
  r = await cli(t, addr, ['canary', 'start', notJson])
  t.equal(r.code, 1, 'a spec that is not JSON: exit 1')
  const decreasing = join(dir, 'decreasing.json')
  await writeFile(decreasing, JSON.stringify({ service: 'order-service', candidate: 'v2', stable: 'v1', steps: [50, 10] }))
  r = await cli(t, addr, ['canary', 'start', decreasing])
  t.equal(r.code, 1, 'an invalid spec: exit 1')
  t.match(r.stderr, /steps/)
  const noRules = join(dir, 'no-rules.json')
  await writeFile(noRules, JSON.stringify({ service: 'order-service', candidate: 'v2', stable: 'v1' }))
  r = await cli(t, addr, ['canary', 'start', noRules, '--data-id', unique('none')])
  t.equal(r.code, 1, 'no RuleSet to roll out on: exit 1')
  t.match(r.stderr, /no RuleSet at FLOWTAG\/none-/)
  r = await cli(t, addr, ['canary', 'start', noRules, '--prometheus', 'prometheus:9090'])
  t.equal(r.code, 1, '--prometheus that is not a URL: exit 1')
  t.match(r.stderr, /invalid option "prometheus\.url": must be an http\(s\) URL/)
  r = await cli(t, addr, ['canary', 'start', '--resume', 'order-service', '--json'])
  t.equal(r.code, 4, 'nothing to resume: exit 4')
  t.match(JSON.parse(r.stdout), { error: /no canary of "order-service" to resume/, exitCode: 4 })
  r = await cli(t, addr, ['canary', 'status', 'order-service', '--json'])
  t.equal(r.code, 4, 'no canary: exit 4')
})

t.test('canary start --prometheus: the figures come from that Prometheus; one that is down holds the step', async (t) => {
  const { dev, nacos } = await world(t)
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-cli-prom-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const spec = join(dir, 'spec.json')
  await writeFile(spec, JSON.stringify({ service: 'order-service', candidate: 'v2', stable: 'v1', intervalMs: 300, minRequests: 5, convergenceTimeoutMs: 1000, prometheus: { matchers: 'env="test"' } }))
  const dead = `http://127.0.0.1:${await freePort()}`
  const run = started(t, dev.address, ['canary', 'start', spec, '--prometheus', dead])
  const store = new StateStore(nacos.config, 'FLOWTAG')
  const paused = await waitFor('paused at convergence', async () => {
    const s = await store.load('order-service')
    return s?.phase === 'paused' ? s : undefined
  }, 20_000)
  t.same(paused.spec.prometheus, { url: dead, matchers: 'env="test"', serviceLabel: 'job', laneLabel: 'flowtag_version', instanceLabel: 'instance' }, '--prometheus sets the spec\'s url, the file\'s other fields kept')
  t.match(paused.history.at(-1)?.message, /no metrics to start the step's window from \(@flowtag\/canary: Prometheus at http:\/\/127\.0\.0\.1:\d+ cannot be reached/)
  t.notOk(paused.history.some((e) => e.event === 'check'), 'never judged')
  t.match(run.io.stderr, /FLOWTAG_CANARY_METRICS_UNAVAILABLE|cannot read the metrics/, 'warned about on stderr')
  const abort = await cli(t, dev.address, ['canary', 'abort', 'order-service'])
  t.equal(abort.code, 0)
  t.equal((await run.exit()).code, 1, 'aborted: exit 1')
})

t.test('a stopped controller leaves its canary to --resume; commands wait for one; status --watch follows it', async (t) => {
  const { dev, nacos } = await world(t, { traffic: false })
  const addr = dev.address
  const store = new StateStore(nacos.config, 'FLOWTAG')
  const dir = await mkdtemp(join(tmpdir(), 'flowtag-cli-edges-'))
  const spec = join(dir, 'canary.json')
  await writeFile(spec, JSON.stringify({ service: 'order-service', candidate: 'v2', stable: 'v1', steps: [10, 100], intervalMs: 60_000, minRequests: 20 }))

  const first = started(t, addr, ['canary', 'start', spec])
  await waitFor('the first step to converge', async () => (await store.load('order-service'))?.phase === 'waiting', 20_000)
  first.child.kill('SIGTERM')
  t.equal((await first.exit()).code, 0, 'a stopped controller is not a failed canary')
  t.match(first.io.stderr, /controller stopped at waiting; `flowtag canary start --resume order-service` takes over/)
  t.match(first.io.stdout, /step 1 10% step: step 1\/2: v2 at 10%/, 'plain lines, one per decision')

  let r = await cli(t, addr, ['canary', 'pause', 'order-service', '--timeout', '700'])
  t.equal(r.code, 5, 'no controller applied it: exit 5')
  t.match(r.stderr, /no controller applied "pause" within 700 ms, so it is withdrawn \(a controller started later will not apply it\)/)

  const second = started(t, addr, ['canary', 'start', '--resume', 'order-service', '--dashboard-port', '0', '--token', 'open-sesame'])
  const url = await waitFor('the dashboard address', () => /dashboard: (http:\S+)#token=open-sesame/.exec(second.io.stderr)?.[1], 20_000)
  const page = await fetch(url)
  t.equal(page.status, 200, 'the dashboard is served')
  // The withdrawn pause is not applied by the controller that took over (a promote typed hours
  // before must not run when a controller comes back): it says so, and stays where it was.
  await waitFor('the withdrawn pause seen', () => /command: pause by cli \(sent at [^)]+\) not applied: withdrawn by its sender/.test(second.io.stdout), 20_000)
  t.equal((await store.load('order-service'))?.phase, 'waiting', 'not paused')
  r = await cli(t, addr, ['canary', 'pause', 'order-service'])
  t.equal(r.code, 0, r.stderr)
  await waitFor('the pause to be applied', async () => (await store.load('order-service'))?.phase === 'paused', 20_000)

  const watch = started(t, addr, ['canary', 'status', 'order-service', '--watch'])
  await waitFor('a first status', () => /order-service v2→ paused/.test(watch.io.stdout), 20_000)
  r = await cli(t, addr, ['canary', 'abort', 'order-service'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /order-service v2→ aborted/)
  const end = await second.exit()
  t.equal(end.code, 1, 'the canary ended aborted: exit 1')
  t.match(second.io.stdout, /restart: controller took over at step 1 \(waiting\)/)
  t.match(second.io.stdout, /abort: aborted by cli/)
  t.match(second.io.stdout, /order-service: aborted\n$/)
  const watched = await watch.exit()
  t.equal(watched.code, 1, '--watch ends with the canary, exit 1 for an abort')
  t.ok((watch.io.stdout.match(/^order-service v2→ /gm) ?? []).length >= 2, 'it printed the status more than once')
  t.match(watch.io.stdout, /order-service v2→ aborted/)
})

t.test('a Nacos with auth on: credentials from NACOS_USERNAME/NACOS_PASSWORD; without them one coded error saying where to set them', async (t) => {
  const auth = { username: 'nacos', password: 'cli-pa55-word' }
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1', auth })
  t.teardown(() => dev.close())
  const dataId = unique('authed')
  let r = await cli(t, dev.address, ['rules', 'get', '--data-id', dataId, '--json'])
  t.equal(r.code, 3, 'refused: exit 3')
  t.match(JSON.parse(r.stdout), { code: 'FLOWTAG_NACOS_AUTH', error: /requires a login.*NACOS_USERNAME\/NACOS_PASSWORD/ })
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line, no storm')
  r = await runNode(t, BIN, { args: ['--nacos', dev.address, 'rules', 'get', '--data-id', dataId], env: { NACOS_USERNAME: auth.username, NACOS_PASSWORD: auth.password } }, 30_000)
  t.equal(r.code, 1, 'logged in: the answer is that there is no RuleSet yet')
  t.match(r.stderr, /no RuleSet at FLOWTAG\/authed-/)
  r = await runNode(t, BIN, { args: ['--nacos', dev.address, 'rules', 'get', '--data-id', dataId], env: { NACOS_USERNAME: auth.username, NACOS_PASSWORD: 'wrong' } }, 30_000)
  t.equal(r.code, 3)
  t.match(r.stderr, /refused the login of user "nacos"/)
})
