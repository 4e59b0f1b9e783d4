// A gRPC service is judged on its rpc.server.call.duration (@flowtag/grpc): calls are requests,
// server-fault status codes its server errors; its /metrics is scraped at the port it names.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { NacosClient } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import { ScrapeSource } from '../src/index.ts'
import { figuresFromText } from '../src/internals.ts'

// What OTel's Prometheus exporter writes for @flowtag/grpc's histogram (one bucket kept short).
function rpcText (calls: Record<number, number>, seconds = 0.5): string {
  const lines: string[] = []
  for (const [code, n] of Object.entries(calls)) {
    const labels = `flowtag_lane="v2",rpc_system="grpc",rpc_service="inventory.Inventory",rpc_method="Check",rpc_grpc_status_code="${code}"`
    lines.push(`rpc_server_call_duration_count{${labels}} ${n}`, `rpc_server_call_duration_sum{${labels}} ${seconds}`)
    lines.push(`rpc_server_call_duration_bucket{${labels},le="0.1"} ${n}`, `rpc_server_call_duration_bucket{${labels},le="+Inf"} ${n}`)
  }
  return lines.join('\n') + '\n'
}

t.test('figures from the gRPC histogram: server faults count, client mistakes do not', async (t) => {
  // 0 OK, 3 NOT_FOUND (a client's mistake), 13 INTERNAL and 14 UNAVAILABLE (faults)
  const f = figuresFromText(rpcText({ 0: 90, 5: 4, 13: 3, 14: 3 }))
  t.equal(f.requests, 100)
  t.equal(f.serverErrors, 6)
  t.same(f.buckets, [[0.1, 100], [Infinity, 100]])
})

t.test('a gRPC instance is scraped at the port its flowtag.metrics.port names', async (t) => {
  const metrics = createServer((req, res) => {
    if (req.url === '/metrics') res.end(rpcText({ 0: 40, 14: 10 }))
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => metrics.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => metrics.close(() => resolve())))
  const dev = await startNacosDevServer({ port: 0, host: '127.0.0.1' })
  t.teardown(() => dev.close())
  const nacos = new NacosClient({ serverAddr: dev.address })
  t.teardown(() => nacos.close())
  // the registered port is the gRPC one (nothing answers HTTP there)
  await nacos.naming.register('inventory-service', { ip: '127.0.0.1', port: 1, ephemeral: true, metadata: { version: 'v2', protocol: 'grpc', 'flowtag.metrics.port': String((metrics.address() as AddressInfo).port) } })
  await waitFor('registered', async () => (await nacos.naming.instances('inventory-service')).length === 1)
  const reading = await new ScrapeSource({ discovery: nacos.naming }).read('inventory-service')
  const [i] = [...reading.instances.values()]
  t.equal(i?.error, undefined, 'scraped at the metrics port')
  t.equal(i?.figures?.requests, 50)
  t.equal(i?.figures?.serverErrors, 10)
})
