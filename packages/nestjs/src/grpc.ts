// @flowtag/nestjs/grpc: Nest's gRPC transport and clients in lanes (needs @flowtag/grpc,
// @grpc/grpc-js and @nestjs/microservices).
export { FlowTagGrpcTransport, type FlowTagGrpcTransportOptions } from './grpc-transport.ts'
export { FlowTagGrpcClientsModule, type FlowTagGrpcClient, type FlowTagGrpcClientsOptions } from './grpc-clients.ts'
export { FlowTagGrpc } from '@flowtag/grpc'
