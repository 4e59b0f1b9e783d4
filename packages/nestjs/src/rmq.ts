// @flowtag/nestjs/rmq: Nest's RabbitMQ transport and client in lanes (needs @flowtag/mq, amqplib,
// amqp-connection-manager for the client, and @nestjs/microservices).
export { FlowTagRmqServer, type FlowTagRmqServerOptions } from './rmq-server.ts'
export { FlowTagClientRmq, type FlowTagClientRmqOptions } from './rmq-client.ts'
export type { FlowTagConsumerOptions } from './message-options.ts'
