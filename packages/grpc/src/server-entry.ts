export { FlowTagGrpcServer, grpcServerOptionsSchema, type FlowTagGrpcServerOptions } from './server.ts'
