import t from 'tap'
import { flowTag } from '../src/express.ts'
import { currentTag } from '../src/index.ts'
import { express, listen } from './fixtures/express-app.ts'
import { awaitWork, interleave, streamWork, timerWork } from './fixtures/interleave.ts'

for (const order of ['flowTag before express.json()', 'flowTag after express.json()']) {
  t.test(`1,200 interleaved requests through a real Express server (${order}): no bleed`, async (t) => {
    const app = express()
    const mw = flowTag({ mode: 'service' })
    if (order.includes('before')) { app.use(mw); app.use(express.json({ limit: '1mb' })) } else { app.use(express.json({ limit: '1mb' })); app.use(mw) }
    app.get('/await', async (_req, res) => { res.send(await awaitWork()) })
    app.get('/timer', async (_req, res) => { res.send(await timerWork()) })
    app.get('/stream', (_req, res) => { res.type('text/plain'); streamWork().pipe(res) })
    app.post('/body', async (req, res) => {
      const sent = (req.body as { tag: string }).tag
      if (currentTag() !== sent || req.flow.tag !== sent) { res.send(`mismatch:${currentTag()}`); return }
      res.send(await awaitWork())
    })
    const server = await listen(app)
    t.teardown(server.close)
    const bad = await interleave(server.origin, 1200)
    t.same(bad, [], 'every request saw only its own tag')
    t.equal(mw.tagger.stats.trusted, 1200)
  })
}
