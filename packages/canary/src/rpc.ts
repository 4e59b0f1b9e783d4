// A gRPC server's figures (@flowtag/grpc's FlowTagGrpcServer): its `rpc.server.call.duration`
// histogram, one observation per finished call, read like the HTTP server histogram: calls are
// its "requests", calls that ended with a server-side fault status its "server errors" (as 5xx
// are for HTTP; a client's own mistake, such as INVALID_ARGUMENT or NOT_FOUND, is not).
import { histogramFigures } from './messages.ts'
import type { Sample } from './prom-text.ts'
import type { Figures } from './window.ts'

/** Prefix of the gRPC server histogram's series in Prometheus text (OTel's exporter may add `_seconds`). */
export const RPC_SERIES = 'rpc_server_call_duration'
const RPC_HISTOGRAM = /^rpc_server_call_duration(?:_seconds)?_(bucket|count|sum)$/

/**
 * Instance metadata naming the port that serves an instance's `/metrics` (a gRPC port serves no
 * HTTP): the scrape goes there instead of the registered port. The same key as @flowtag/grpc's
 * `METRICS_PORT_METADATA`.
 */
export const METRICS_PORT_METADATA = 'flowtag.metrics.port'

/** gRPC status codes of a server-side fault: UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS. */
const SERVER_FAULTS: ReadonlySet<string> = new Set(['2', '4', '13', '14', '15'])

/** Whether a call's `rpc_grpc_status_code` label is a server-side fault (counted as a server error). */
export const isServerFault = (code: string | undefined): boolean => SERVER_FAULTS.has(code ?? '')

/** Sum the gRPC server histogram's series of one instance into figures (all zero when it has none). */
export function rpcFiguresFromSamples (samples: readonly Sample[]): Figures {
  return histogramFigures(samples, RPC_HISTOGRAM, (labels) => isServerFault(labels.rpc_grpc_status_code))
}
