// Shadow rules at the edge: the live decision routes, the shadow's is only counted.
import Fastify from 'fastify'
import t from 'tap'
import { metrics, type Attributes, type Meter, type MeterProvider } from '@opentelemetry/api'
import { request } from 'undici'
import { fastifyFlowTag } from '../src/fastify.ts'
import { currentTag } from '../src/index.ts'

// A MeterProvider that records counter adds: enough to see what the tagger reports.
const adds: Array<{ name: string, value: number, attrs: Attributes | undefined }> = []
const meter = {
  createCounter: (name: string) => ({ add: (value: number, attrs?: Attributes) => adds.push({ name, value, attrs }) })
} as unknown as Meter
metrics.setGlobalMeterProvider({ getMeter: () => meter } as MeterProvider)
t.teardown(() => metrics.disable())

const canary = (version: number, percent: number) => ({
  version,
  user: { header: 'x-user-id' },
  rules: [
    { name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' },
    { name: 'canary', split: { weights: { v2: percent }, rest: 'v1' } }
  ],
  default: 'v1'
})

t.test('every request is evaluated by both; only the live one routes; pairs are counted', async (t) => {
  const app = Fastify()
  await app.register(fastifyFlowTag, { mode: 'edge', rules: { ...canary(1, 10), shadow: canary(2, 40) } })
  app.get('/', async () => ({ lane: currentTag() }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/`
  const pairs = new Map<string, number>()
  let liveV2 = 0
  const users = 600
  for (let i = 0; i < users; i++) {
    const res = await request(url, { headers: { 'x-user-id': `u${i}`, ...(i % 50 === 0 ? { 'x-tester': 'yes' } : {}) } })
    const { lane } = await res.body.json() as { lane: string }
    if (lane === 'v2') liveV2++
  }
  for (const a of adds.filter((x) => x.name === 'flowtag.context.shadow_decisions')) {
    const key = `${a.attrs!.live_lane}>${a.attrs!.shadow_lane} ${a.attrs!.shadow_rule} ${a.attrs!.live_version}/${a.attrs!.shadow_version}`
    pairs.set(key, (pairs.get(key) ?? 0) + a.value)
  }
  t.equal([...pairs.values()].reduce((s, n) => s + n, 0), users, 'one count per request')
  t.equal(app.flowTagger.stats.shadowed, users)
  t.ok(liveV2 / users < 0.2, `live routing kept the 10% split (${liveV2} in v2)`)
  const moved = pairs.get('v1>v2 canary 1/2') ?? 0
  t.ok(moved / users > 0.2 && moved / users < 0.4, `the shadow moves ~30% from v1 to v2 (${moved})`)
  t.equal(pairs.get('v2>v1 canary 1/2'), undefined, 'monotonic: nobody the live split put in v2 leaves it')
  t.equal(pairs.get('v2>v2 testers 1/2'), 12, 'testers agree')
})

t.test('requests without a sticky key: live and shadow take the same random draw (no one moves back)', async (t) => {
  const before = adds.length
  const app = Fastify()
  await app.register(fastifyFlowTag, { mode: 'edge', rules: { ...canary(3, 10), shadow: canary(4, 40) } })
  app.get('/', async () => ({ lane: currentTag() }))
  t.teardown(() => app.close())
  const anonymous = 400
  for (let i = 0; i < anonymous; i++) await app.inject({ url: '/' })
  const pairs = new Map<string, number>()
  for (const a of adds.slice(before).filter((x) => x.name === 'flowtag.context.shadow_decisions')) {
    const key = `${a.attrs!.live_lane}>${a.attrs!.shadow_lane}`
    pairs.set(key, (pairs.get(key) ?? 0) + a.value)
  }
  t.equal([...pairs.values()].reduce((s, n) => s + n, 0), anonymous, 'one count per request')
  t.equal(pairs.get('v2>v1'), undefined, 'no request the live 10% put in v2 is predicted back in v1 (two dice would move ~6%)')
  const moved = pairs.get('v1>v2') ?? 0
  t.ok(moved / anonymous > 0.15 && moved / anonymous < 0.45, `the shadow moves ~30% from v1 to v2 (${moved})`)
})

t.test('no shadow: one evaluate(), nothing counted', async (t) => {
  const before = adds.length
  const app = Fastify()
  await app.register(fastifyFlowTag, { mode: 'edge', rules: canary(1, 10) })
  app.get('/', async () => ({ lane: currentTag() }))
  await app.inject({ url: '/', headers: { 'x-user-id': 'a' } })
  t.equal(app.flowTagger.stats.shadowed, 0)
  t.equal(adds.length, before)
  await app.close()
})
