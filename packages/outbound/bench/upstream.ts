// The service behind the gateway: a small JSON answer, like a user lookup. Listens on argv[2]
// (default 127.0.0.1; 0.0.0.0 serves every loopback address, as the scale benchmark's fleet needs).
import { createServer } from 'node:http'

const body = JSON.stringify({ id: 1, name: 'Ada Lovelace', email: 'ada@example.com', version: 'v1' })
const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, process.argv[2] ?? '127.0.0.1', () => {
  const address = server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
})
process.on('disconnect', () => process.exit(0))
