// Consumer-only instances (@flowtag/mq registers message consumers with `flowtag.role: consumer`
// and their health or metrics port) are never endpoints of a nacos:/// channel: a lane whose only
// instances consume messages falls back as an empty lane. The "consumer" is a real Echo server,
// so a misrouted call would be answered and counted.
import t from 'tap'
import { credentials, status } from '@grpc/grpc-js'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagGrpc } from '../src/index.ts'
import { EchoClient, echo, startEcho } from './fixtures/echo.ts'

const quiet = { warn: () => {}, info: () => {} }

t.test('the gRPC balancer never picks a consumer-only instance', async (t) => {
  const [stable, canary, consumer] = await Promise.all([startEcho('stable'), startEcho('canary'), startEcho('consumer')])
  t.teardown(() => Promise.all([stable.close(), canary.close(), consumer.close()]))
  const at = (port: number, metadata: Record<string, string>) => ({ ip: '127.0.0.1', port, metadata })
  const asConsumer = (lane: string) => at(consumer.port, { version: lane, 'flowtag.role': 'consumer', 'flowtag.consumer': 'orders' })
  const discovery = new StaticDiscovery({ echo: [at(stable.port, { version: 'v1' }), asConsumer('v3')] })
  const lanes = new FlowTagGrpc({ discovery, stableLane: 'v1', logger: quiet })
  const client = new EchoClient('nacos:///echo', credentials.createInsecure(), lanes.clientOptions())
  t.teardown(() => { client.close(); lanes.close() })

  for (let i = 0; i < 20; i++) t.match(await runWithFlow({ tag: 'v3', baggage: {} }, () => echo(client)), { id: 'stable', tag: 'v3' })
  for (let i = 0; i < 20; i++) t.match(await echo(client), { id: 'stable' })

  discovery.set('echo', [at(stable.port, { version: 'v1' }), at(canary.port, { version: 'v2' }), asConsumer('v2')])
  // the list reaches the picker through the subscription: wait for the canary to take v2's calls
  const deadline = Date.now() + 10_000
  while ((await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client))).id !== 'canary' && Date.now() < deadline);
  for (let i = 0; i < 30; i++) t.match(await runWithFlow({ tag: 'v2', baggage: {} }, () => echo(client)), { id: 'canary' })
  t.equal(consumer.calls, 0, 'the consumer-only instance got no call')

  // strict: a lane whose only instance consumes messages has no instance for calls
  const strict = new FlowTagGrpc({ discovery: new StaticDiscovery({ echo: [at(stable.port, { version: 'v1' }), asConsumer('v3')] }), stableLane: 'v1', logger: quiet, lanes: () => ({ stable: 'v1', strict: true }) })
  const strictClient = new EchoClient('nacos:///echo', credentials.createInsecure(), strict.clientOptions())
  t.teardown(() => { strictClient.close(); strict.close() })
  const err = await runWithFlow({ tag: 'v3', baggage: {} }, () => echo(strictClient)).catch((e: unknown) => e)
  t.match(err, { code: status.UNAVAILABLE, details: /no available instance of "echo" in lane "v3"/ })
  t.equal(consumer.calls, 0)
})
