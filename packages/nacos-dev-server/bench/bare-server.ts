// Baseline for the dev-server benchmark: a bare node:http server answering beats and lists
// with fixed bodies, so the ratio shows what the dev server's own work costs.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const beat = JSON.stringify({ clientBeatInterval: 5000, code: 10200, lightBeatEnabled: true })
const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    res.setHeader('content-type', 'application/json;charset=UTF-8')
    res.end(req.url?.startsWith('/nacos/v1/ns/instance/beat') ? beat : 'ok')
  })
})
server.listen(0, '127.0.0.1', () => console.log(`NACOS_SERVER_ADDR=127.0.0.1:${(server.address() as AddressInfo).port}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
