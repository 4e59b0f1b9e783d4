// The gRPC server's calls per lane, as a canary reads them: `rpc.server.call.duration` (seconds,
// OpenTelemetry's RPC semantic conventions) with the call's lane (`flowtag.lane`, its flow tag),
// the method and the status code. No-ops until the app installs a MeterProvider.
import { metrics, type Histogram, type Meter } from '@opentelemetry/api'
import { LANE_ATTRIBUTE } from '@flowtag/context'

/** Instance metadata naming the port whose `/metrics` serves this instance's figures (a gRPC port serves none). */
export const METRICS_PORT_METADATA = 'flowtag.metrics.port'

// Seconds: the same advisory boundaries as the HTTP server histogram of @flowtag/service.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

export class ServerCallMetrics {
  readonly #duration: Histogram
  readonly #version: string | undefined

  constructor (version: string | undefined, meter: Meter = metrics.getMeter('@flowtag/grpc')) {
    this.#version = version
    this.#duration = meter.createHistogram('rpc.server.call.duration', {
      description: 'Duration of gRPC server calls, by lane',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS }
    })
  }

  /**
   * One finished call: `path` `/package.Service/Method`, `code` its gRPC status code (0: OK),
   * `lane` the call's flow tag (undefined: untagged), `seconds` from the handler's start.
   */
  record (path: string, lane: string | undefined, code: number, seconds: number): void {
    const slash = path.lastIndexOf('/')
    this.#duration.record(seconds, {
      'rpc.system': 'grpc',
      'rpc.service': path.slice(1, slash),
      'rpc.method': path.slice(slash + 1),
      'rpc.grpc.status_code': code,
      [LANE_ATTRIBUTE]: lane ?? 'none',
      ...(this.#version === undefined ? {} : { 'flowtag.version': this.#version })
    })
  }
}
