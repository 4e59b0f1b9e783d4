// Loopback ports for tests: listen on port 0 and let the kernel choose.
import { createServer, type Server } from 'node:net'

/** Listen on `host`:0 and resolve with the port the kernel chose. Works for an http.Server too (it is a net.Server). */
export function listenOnLoopback (server: Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => {
      server.off('error', reject)
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : 0)
    })
  })
}

/**
 * A port that was free a moment ago (bound, then released), for what must be told its port
 * before it starts (a child process, a restart on the same port). Prefer port 0 where possible.
 */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  const server = createServer()
  const port = await listenOnLoopback(server, host)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
