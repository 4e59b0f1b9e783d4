// The Nacos gRPC wire codec exists twice: in the client (@flowtag/nacos) and in the dev server
// (@flowtag/nacos-dev-server), because neither package may depend on the other at run time (the
// client would install the dev server; the dev server would install the client and close a circle
// through the client's tests). Until it has a package of its own, the two copies must not drift.
import { readFile } from 'node:fs/promises'
import t from 'tap'

const root = new URL('../../', import.meta.url)

t.test('the client and the dev server speak the same wire codec, line for line', async (t) => {
  const client = await readFile(new URL('packages/nacos/src/grpc-wire.ts', root), 'utf8')
  const dev = await readFile(new URL('packages/nacos-dev-server/src/grpc-wire.ts', root), 'utf8')
  t.ok(client.includes('export function encodePayload'), 'the client copy is the codec')
  t.equal(dev, client, 'packages/nacos-dev-server/src/grpc-wire.ts is packages/nacos/src/grpc-wire.ts')
})
