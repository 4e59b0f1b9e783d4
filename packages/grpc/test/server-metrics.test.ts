// rpc.server.call.duration: each call of a FlowTagGrpcServer counted with its lane, method and
// status code, what a lane canary judges a gRPC service by.
import { credentials, Metadata, status } from '@grpc/grpc-js'
import { MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics'
import t from 'tap'
import { FlowTagGrpcServer } from '../src/server-entry.ts'
import { EchoClient, echo, startEcho } from './fixtures/echo.ts'

class TestReader extends MetricReader {
  protected async onForceFlush (): Promise<void> {}
  protected async onShutdown (): Promise<void> {}
}

t.test('unary calls are recorded per lane and status code; meter: false is accepted, a bad meter is refused', async (t) => {
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  t.teardown(() => provider.shutdown())
  const meter = provider.getMeter('test')
  const ok = await startEcho('ok', { meter })
  const failing = await startEcho('failing', { meter }, true)
  t.teardown(() => Promise.all([ok.close(), failing.close()]))
  const tagged = new Metadata()
  tagged.set('x-flow-tag', 'v2')
  const okClient = new EchoClient(`127.0.0.1:${ok.port}`, credentials.createInsecure())
  const badClient = new EchoClient(`127.0.0.1:${failing.port}`, credentials.createInsecure())
  t.teardown(() => { okClient.close(); badClient.close() })
  await echo(okClient, tagged)
  await echo(okClient, tagged)
  await echo(okClient)
  await t.rejects(echo(badClient, tagged), { code: status.UNAVAILABLE })

  const { resourceMetrics } = await reader.collect()
  const hist = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'rpc.server.call.duration') as HistogramMetricData | undefined
  t.equal(hist?.descriptor.unit, 's')
  const count = (lane: string, code: number) => (hist?.dataPoints ?? []).filter((p) => p.attributes['flowtag.lane'] === lane && p.attributes['rpc.grpc.status_code'] === code).reduce((n, p) => n + p.value.count, 0)
  t.equal(count('v2', status.OK), 2, 'two OK calls in v2')
  t.equal(count('none', status.OK), 1, 'one untagged call')
  t.equal(count('v2', status.UNAVAILABLE), 1, 'the failed call with its code')
  t.match(hist?.dataPoints[0]?.attributes, { 'rpc.system': 'grpc', 'rpc.service': 'test.Echo', 'rpc.method': 'Echo' })

  const quiet = await startEcho('quiet', { meter: false })
  t.teardown(() => quiet.close())
  t.throws(() => new FlowTagGrpcServer({ meter: {} as never }), { code: 'FLOWTAG_GRPC_BAD_OPTION', message: /"meter": expected an OpenTelemetry Meter or false/ })
})
