// An Express service in lane LANE: the @flowtag/service middleware registers it once listening,
// trusts the incoming tag, and deregisters then drains on SIGTERM.
import express from 'express'
import { flowTagService } from '@flowtag/service/express'
import { currentTag } from '@flowtag/context'

const lane = process.env.LANE
const app = express()
const ft = flowTagService({ service: 'catalog', version: lane, nacos: { serverAddr: process.env.NACOS_SERVER_ADDR } })
app.use(ft)
app.get('/where', (req, res) => {
  res.json({ servedBy: lane, tag: currentTag() ?? null, header: req.headers['x-flow-tag'] ?? null })
})
const server = await ft.listen(app, { port: 0, host: '127.0.0.1' })
process.send?.({ port: server.address().port })
