import Fastify from 'fastify'
import t from 'tap'
import { fastifyFlowTag } from '../src/fastify.ts'
import { currentTag } from '../src/index.ts'
import { awaitWork, interleave, streamWork, timerWork } from './fixtures/interleave.ts'

t.test('1,200 interleaved requests with different tags through a real Fastify server: no bleed', async (t) => {
  const app = Fastify({ bodyLimit: 1 << 20 })
  t.teardown(() => app.close())
  await app.register(fastifyFlowTag, { mode: 'service' })
  app.get('/await', async () => awaitWork())
  app.get('/timer', async () => timerWork())
  app.get('/stream', (_req, reply) => { reply.type('text/plain').send(streamWork()) })
  app.post('/body', async (req) => {
    const sent = (req.body as { tag: string }).tag
    const seen = currentTag()
    if (seen !== sent || req.flow.tag !== sent) return `mismatch:${seen}`
    return awaitWork()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const bad = await interleave(`http://127.0.0.1:${port}`, 1200)
  t.same(bad, [], 'every request saw only its own tag')
  t.equal(app.flowTagger.stats.trusted, 1200)
})
