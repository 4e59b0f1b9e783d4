import Fastify from 'fastify'
import t from 'tap'
import { Agent, request } from 'undici'
import { createRuleStore, staticSource } from '@flowtag/rules'
import { fastifyFlowTag } from '../src/fastify.ts'

const good = (version: number, lane: string) => ({ version, rules: [{ name: 'all', when: { headers: { 'x-probe': { exists: true } } }, lane }], default: lane })
// schema-invalid in one place only; if any part of it leaked, requests would get 'evil'
const bad = { version: 99, rules: [{ name: 'all', when: { ip: ['10.0.0.0/99'] }, lane: 'evil' }], default: 'evil' }

t.test('rules swapped and refused under load: every request sees one whole good version', async (t) => {
  const source = staticSource(good(1, 'blue'))
  const store = createRuleStore({ source })
  await store.ready
  const app = Fastify()
  await app.register(fastifyFlowTag, { mode: 'edge', rules: store })
  app.get('/', async (req) => req.flow.tag)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const agent = new Agent({ connections: 32 })
  t.teardown(async () => { await agent.close(); await app.close(); await store.close() })
  const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  let flips = 0
  const docs = [good(2, 'green'), bad, good(3, 'blue'), '{"version": 4,', good(5, 'green')]
  const flipper = setInterval(() => { source.set(docs[flips++ % docs.length]!) }, 1)
  const seen = new Map<string, number>()
  try {
    await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
      const res = await request(origin, { dispatcher: agent, headers: i % 2 === 0 ? { 'x-probe': '1' } : {} })
      const lane = await res.body.text()
      seen.set(lane, (seen.get(lane) ?? 0) + 1)
    }))
  } finally {
    clearInterval(flipper)
  }
  t.ok(flips > 10, `rules changed ${flips} times during the run`)
  t.same([...seen.keys()].filter((l) => l !== 'blue' && l !== 'green'), [], `only good lanes served: ${JSON.stringify([...seen])}`)
  t.ok(store.stats.rejected >= 1, 'bad documents were refused meanwhile')
})
