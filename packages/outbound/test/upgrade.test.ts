// An HTTP upgrade (a WebSocket handshake) by service name: the dispatcher picks the instance of the
// request's lane and hands the caller the upgraded socket, with the lane in x-flow-tag.
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { listenOnLoopback } from '@flowtag/test-kit'
import t, { type Test } from 'tap'
import { upgrade } from 'undici'
import { FlowTagDispatcher } from '../src/index.ts'

/** A server that accepts every upgrade and says who it is and which lane it was asked for. */
async function upgrader (t: Test, id: string): Promise<{ server: Server, port: number }> {
  const server = createServer((_req, res) => { res.end(id) })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: flowtag-test\r\nconnection: Upgrade\r\nx-id: ${id}\r\nx-lane: ${String(req.headers['x-flow-tag'] ?? '')}\r\n\r\n`)
    socket.end(`hello from ${id}`)
  })
  const port = await listenOnLoopback(server)
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
  return { server, port }
}

t.test('an upgrade goes to the instance of the request\'s lane and hands back the socket', async (t) => {
  const [one, two] = await Promise.all([upgrader(t, 'one'), upgrader(t, 'two')])
  const discovery = new StaticDiscovery({
    'chat-service': [
      { ip: '127.0.0.1', port: one.port, metadata: { version: 'v1' } },
      { ip: '127.0.0.1', port: two.port, metadata: { version: 'v2' } }
    ]
  })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => dispatcher.close())
  for (const lane of ['v1', 'v2']) {
    const { headers, socket } = await runWithFlow({ tag: lane, baggage: {} }, () => upgrade('http://chat-service/ws', { dispatcher, protocol: 'flowtag-test' }))
    let text = ''
    for await (const chunk of socket) text += String(chunk)
    t.equal(headers['x-id'], lane === 'v1' ? 'one' : 'two', `${lane}: the lane's instance`)
    t.equal(headers['x-lane'], lane, `${lane}: x-flow-tag sent with the handshake`)
    t.equal(text, `hello from ${lane === 'v1' ? 'one' : 'two'}`, `${lane}: the upgraded socket is the caller's`)
  }
})
