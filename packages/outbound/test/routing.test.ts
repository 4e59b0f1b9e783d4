// Lane selection and weights against real instance processes on loopback.
import t from 'tap'
import { request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagDispatcher, type OutboundOptions } from '../src/index.ts'
import { load, startInstance, type Instance } from './fixtures/instances.ts'

interface Reply {
  id: string
  version: string
  tag: string | null
  baggage: string | null
  host: string | null
}

async function get (dispatcher: FlowTagDispatcher, url: string): Promise<Reply> {
  const res = await request(url, { dispatcher })
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  return (await res.body.json()) as Reply
}

function count (replies: Reply[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of replies) out[r.id] = (out[r.id] ?? 0) + 1
  return out
}

const at = (i: Instance, version: string, extra: object = {}) => ({
  ip: '127.0.0.1',
  port: i.port,
  metadata: (version === '' ? {} : { version }) as Record<string, string>,
  ...extra
})

t.test('routing', async (t) => {
  const [a, b, c, canary] = await Promise.all([
    startInstance(t, 'a', 'v1'),
    startInstance(t, 'b', 'v1'),
    startInstance(t, 'c', 'v1'),
    startInstance(t, 'canary', 'v2')
  ])
  const discovery = new StaticDiscovery({
    'user-service': [at(a, 'v1', { weight: 1 }), at(b, 'v1', { weight: 3 }), at(c, 'v1', { weight: 6 }), at(canary, 'v2')]
  })
  const make = (opts: Partial<OutboundOptions> = {}) => {
    const d = new FlowTagDispatcher({ discovery, stableLane: 'v1', ...opts })
    t.teardown(() => d.close())
    return d
  }

  t.test('untagged traffic goes to the stable lane, split by instance weight', async (t) => {
    const d = make()
    const replies = await load(1000, 10, () => get(d, 'http://user-service/users/1'))
    const n = count(replies)
    t.notOk(n.canary, 'no untagged request reaches the canary lane')
    // Expected shares 0.1 / 0.3 / 0.6; tolerance 6 points (at least 3.9 standard deviations).
    t.ok(Math.abs((n.a ?? 0) / 1000 - 0.1) < 0.06, `a ${n.a}`)
    t.ok(Math.abs((n.b ?? 0) / 1000 - 0.3) < 0.06, `b ${n.b}`)
    t.ok(Math.abs((n.c ?? 0) / 1000 - 0.6) < 0.06, `c ${n.c}`)
    t.equal(replies[0]!.host, 'user-service', 'Host is the service name')
    t.equal(replies[0]!.tag, null, 'no flow, no tag header')
  })

  t.test('a tagged request hits its lane and carries the tag and baggage on', async (t) => {
    const d = make()
    const replies = await runWithFlow({ tag: 'v2', baggage: { user: 'u 1' } }, () => load(50, 5, () => get(d, 'http://user-service/users/1')))
    t.same(count(replies), { canary: 50 })
    t.equal(replies[0]!.tag, 'v2')
    t.match(replies[0]!.baggage, /flowtag.lane=v2/)
    t.match(replies[0]!.baggage, /user=u%201/)
  })

  t.test('an empty lane falls back to stable', async (t) => {
    const d = make()
    const replies = await runWithFlow({ tag: 'v9', baggage: {} }, () => load(60, 5, () => get(d, 'http://user-service/x')))
    t.notOk(count(replies).canary)
    t.equal(replies.length, 60)
    t.ok(replies.every((r) => r.version === 'v1'))
    t.equal(replies[0]!.tag, 'v9', 'the tag still travels on')
  })

  t.test('a strict route fails with a coded 503 error instead', async (t) => {
    const d = make({ lanes: () => ({ stable: 'v1', strict: true }) })
    await runWithFlow({ tag: 'v9', baggage: {} }, () =>
      t.rejects(get(d, 'http://user-service/x'), { code: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE', statusCode: 503, lane: 'v9', service: 'user-service' })
    )
    const tagged = await runWithFlow({ tag: 'v2', baggage: {} }, () => get(d, 'http://user-service/x'))
    t.equal(tagged.id, 'canary', 'a strict route still serves a lane that has instances')
  })

  t.test('strict option as the default for services lanes() knows nothing about', async (t) => {
    const d = make({ strict: true, lanes: () => undefined })
    await runWithFlow({ tag: 'v9', baggage: {} }, () => t.rejects(get(d, 'http://user-service/x'), { code: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE' }))
  })

  t.test('untagged traffic follows the lane weights of lanes() when given', async (t) => {
    const d = make({ lanes: () => ({ stable: 'v1', weights: { v1: 70, v2: 30 } }) })
    const n = count(await load(1000, 10, () => get(d, 'http://user-service/x')))
    t.ok(Math.abs((n.canary ?? 0) / 1000 - 0.3) < 0.06, `canary share ${(n.canary ?? 0) / 1000}`)
  })

  t.test('a throwing lanes() fails the request, not the process', async (t) => {
    const d = make({
      lanes: () => {
        throw new Error('rules broken')
      }
    })
    await t.rejects(get(d, 'http://user-service/x'), { message: 'rules broken' })
    await t.rejects(get(d, 'http://user-service/x'), { message: 'rules broken' }, 'also once the list is loaded')
  })

  t.test('unknown services and lanes with no stable fallback are coded errors', async (t) => {
    const d = make()
    await t.rejects(get(d, 'http://nobody/x'), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE', statusCode: 503 })
    const wrongStable = make({ stableLane: 'stable' })
    await t.rejects(get(wrongStable, 'http://user-service/x'), { code: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE', message: /lanes present: v1, v2/ })
  })

  t.test('unhealthy, disabled and zero-weight instances are never picked', async (t) => {
    const disc = new StaticDiscovery({
      svc: [at(a, 'v1', { healthy: false }), at(b, 'v1', { enabled: false }), at(c, 'v1', { weight: 0 }), at(canary, 'v1')]
    })
    const d = new FlowTagDispatcher({ discovery: disc, stableLane: 'v1' })
    t.teardown(() => d.close())
    t.same(count(await load(100, 10, () => get(d, 'http://svc/x'))), { canary: 100 })
    // All four unpickable: a coded error, not a request to any of them.
    disc.set('svc', [at(a, 'v1', { healthy: false })])
    await t.rejects(get(d, 'http://svc/x'), { code: 'FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE' })
  })

  t.test('unlabelled instances form the stable lane, and list changes are followed', async (t) => {
    const disc = new StaticDiscovery({ plain: [at(a, ''), at(b, '')] })
    const d = new FlowTagDispatcher({ discovery: disc })
    t.teardown(() => d.close())
    const n = count(await load(100, 10, () => get(d, 'http://plain/x')))
    t.same(Object.keys(n).sort(), ['a', 'b'])
    disc.set('plain', [at(c, '')])
    t.same(count(await load(20, 5, () => get(d, 'http://plain/x'))), { c: 20 })
  })
})
