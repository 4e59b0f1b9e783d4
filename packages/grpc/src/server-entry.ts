export { FlowtagGrpcServer, grpcServerOptionsSchema, type FlowtagGrpcServerOptions } from './server.ts'
