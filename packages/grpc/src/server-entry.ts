export { FlowTagGrpcServer, grpcServerOptionsSchema, type FlowTagGrpcServerOptions } from './server.ts'
export { METRICS_PORT_METADATA } from './server-metrics.ts'
