// An Express service (lane from LANE) that trusts the incoming tag, registered in Nacos.
import express from 'express'
import { NacosClient } from '@flowtag/nacos'
import { flowTag } from '@flowtag/context/express'
import { currentTag } from '@flowtag/context'

const lane = process.env.LANE
const client = new NacosClient({ serverAddr: process.env.NACOS_SERVER_ADDR })
const app = express()
app.use(flowTag({ mode: 'service' }))
app.get('/where', (req, res) => {
  res.json({ servedBy: lane, tag: currentTag() ?? null, header: req.headers['x-flow-tag'] ?? null })
})
const server = app.listen(0, '127.0.0.1', async () => {
  const port = server.address().port
  await client.naming.register('catalog', { ip: '127.0.0.1', port, metadata: { version: lane } })
  process.send?.({ port })
})
process.on('SIGTERM', async () => {
  await client.close()
  server.close(() => process.exit(0))
})
