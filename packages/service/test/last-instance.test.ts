// A service's last instance deregistered on purpose by its own client: a caller routing through
// @flowtag/outbound on Nacos discovery (gRPC, as the preset's transport 'auto' takes on Nacos 2+)
// gets the coded no-instance error at once, and the gone address is not called again. Empty
// protection still holds an empty list that may come from a server that lost its state
// (packages/nacos/test/empty-list.test.ts).
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { NacosClient } from '@flowtag/nacos'
import { FlowTagDispatcher } from '@flowtag/outbound'
import { waitFor } from '@flowtag/test-kit'
import t from 'tap'
import { request } from 'undici'
import { startDev } from './fixtures/nacos.ts'

const HOLD = 1000

t.test('the last instance deregistered by its own client: FLOWTAG_OUTBOUND_UNKNOWN_SERVICE, no call to the gone address', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  let calls = 0
  const server = createServer((_req, res) => {
    calls++
    res.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port

  const provider = new NacosClient({ serverAddr: dev.address, transport: 'auto' })
  const caller = new NacosClient({ serverAddr: dev.address, transport: 'auto', namingRecoveryHoldMs: HOLD })
  const dispatcher = new FlowTagDispatcher({ discovery: caller.naming })
  t.teardown(async () => {
    await dispatcher.close()
    await Promise.all([provider.close(), caller.close()])
  })
  await provider.naming.register('solo', { ip: '127.0.0.1', port })
  await waitFor('listed', async () => (await caller.naming.instances('solo')).length === 1, 10_000)
  const res = await request('http://solo/x', { dispatcher })
  t.equal(await res.body.text(), 'ok')
  t.equal(caller.server.transport, 'grpc')
  await sleep(HOLD + 300) // the caller's connection is older than the hold: a push on it is the truth

  await provider.naming.deregister('solo', { ip: '127.0.0.1', port })
  await waitFor('the caller applies the empty list', async () => (await caller.naming.instances('solo')).length === 0, 10_000)
  for (let i = 0; i < 3; i++) {
    await t.rejects(request('http://solo/x', { dispatcher }), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE', statusCode: 503, message: 'no instance of service "solo" is registered' })
  }
  t.equal(calls, 1, 'the gone address got no call after it left')
  t.equal(caller.naming.stats().emptyHeld, 0, 'never held')
})
