// A canary gated on shadow divergence (`maxDivergence`), end to end on loopback: the Nacos dev
// server, order-service v1 and v2 instances with healthy figures, and a gateway process whose real
// @flowtag/shadow comparer counts the pairs it mirrors into v2, exported at its /metrics. The
// controller scrapes the gateway as a caller: a v2 whose answers differ fails the step on
// divergence alone; one that answers the same passes; without pairs the step waits. Then
// `flowtag shadow report` prints the top diverging route with its field.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { CanaryController } from '../src/index.ts'
import { candidateWeight, readRules } from '../src/internals.ts'
import { RULES, world } from './fixtures/world.ts'
import { startShadowGateway } from './fixtures/shadow-gateway.ts'

const fast = { service: 'order-service', candidate: 'v2', stable: 'v1', intervalMs: 400, minRequests: 20, convergenceTimeoutMs: 5000, deadlineMs: 60_000, judge: 'threshold' as const, warmupMs: 0, callers: ['gateway'] }

t.test('a v2 whose answers differ rolls back on divergence, with the breach named', async (t) => {
  const { dev, nacos } = await world(t)
  const gw = await startShadowGateway(t, { nacosAddr: dev.address, service: 'order-service', lane: 'v2' })
  const timer = setInterval(() => gw.mirror(10, 0.3), 50)
  t.teardown(() => clearInterval(timer))
  const c = await CanaryController.start({ ...fast, steps: [20, 100], maxDivergence: { max: 0.05, minCompared: 20, action: 'rollback' } }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  const end = await c.done
  t.equal(end.phase, 'rolled-back', end.history.map((e) => `${e.event}: ${e.message}`).join('\n'))
  const rollback = end.history.find((e) => e.event === 'rollback')
  t.match(rollback?.data, { verdict: 'fail', breaches: [{ check: 'divergence', action: 'rollback', threshold: 0.05 }] })
  t.match(rollback?.message, /divergence 30\.\d% > 0\.05/)
  t.equal(candidateWeight(await readRules(nacos, { rules: RULES }), 'v2'), 0)
  // The learned noise (the timestamp differs in every pair) never counted: 30% is /tier alone.
  const report = gw.comparer.report().routes[0]!
  t.same(report.fields.map((f) => f.field), ['/tier'])
  t.same(report.noise.map((f) => f.field), ['/at'])
})

t.test('a v2 that answers the same passes; without pairs the step waits for them', async (t) => {
  const { dev, nacos } = await world(t)
  const gw = await startShadowGateway(t, { nacosAddr: dev.address, service: 'order-service', lane: 'v2' })
  const c = await CanaryController.start({ ...fast, steps: [100], maxDivergence: 0.05 }, { nacos, tickMs: 100 })
  t.teardown(() => c.close())
  await waitFor('a wait for shadow pairs', () => c.state.history.some((e) => e.event === 'wait' && /0 of 100 shadow pairs compared in the window/.test(e.message)), 20_000)
  const timer = setInterval(() => gw.mirror(20, 0), 50)
  t.teardown(() => clearInterval(timer))
  const end = await c.done
  t.equal(end.phase, 'promoted', end.history.map((e) => `${e.event}: ${e.message}`).join('\n'))
  t.match(end.history.find((e) => e.event === 'check')?.message, /shadow 0\.0% of \d+ pairs diverge/)
})

t.test('flowtag shadow report: the top diverging routes from the gateway\'s /metrics', async (t) => {
  const { dev } = await world(t, { traffic: false })
  const gw = await startShadowGateway(t, { nacosAddr: dev.address, service: 'order-service', lane: 'v2' })
  gw.mirror(104, 0.2, '/users/:id')
  gw.mirror(104, 0, '/orders')
  const run = async (args: string[]) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, '../src/bin.ts'), '--nacos', dev.address, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d })
    child.stderr.on('data', (d: Buffer) => { stderr += d })
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    return { code, stdout, stderr }
  }
  let r = await run(['shadow', 'report', 'gateway'])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.split('\n')
  t.match(lines[1], /^order-service\s+\/users\/:id\s+v2\s+100\s+20\s+20\.0%\s+4$/, 'the diverging route first: 100 judged after 4 learning (the 5th brings the 5th secondary), 20 diverged')
  t.match(lines[2], /^\s+\/tier\s+20$/, 'with its field')
  t.match(lines[3], /^order-service\s+\/orders\s+v2\s+100\s+0\s+0\.0%/)
  t.match(r.stdout, /\(1 of 1 processes read\)/)
  r = await run(['shadow', 'report', '--json', '--top', '1', '--url', `http://127.0.0.1:${gw.port}/metrics`])
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(r.stdout), { read: 1, of: 1, routes: [{ service: 'order-service', route: '/users/:id', lane: 'v2', compared: 100, diverged: 20, divergence: 0.2, learning: 4, fields: [{ field: '/tier', count: 20 }] }] })
  t.equal(JSON.parse(r.stdout).routes.length, 1, '--top 1')
  r = await run(['shadow', 'report', '--for', 'user-service', '--url', `http://127.0.0.1:${gw.port}/metrics`])
  t.match(r.stdout, /no shadow pairs compared/)
  r = await run(['shadow', 'report'])
  t.equal(r.code, 2, 'usage')
  r = await run(['shadow', 'report', 'gateway', '--top', '0'])
  t.equal(r.code, 2, 'a bad --top is a usage error')
  r = await run(['shadow', 'report', 'nobody'])
  t.equal(r.code, 3, 'no instance')
  t.match(r.stderr, /no instance of nobody/)
  r = await run(['shadow', 'report', '--url', 'http://127.0.0.1:1/metrics'])
  t.equal(r.code, 3, 'nothing readable')
  t.match(r.stderr, /could not be read/)
})
