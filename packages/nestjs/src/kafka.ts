// @flowtag/nestjs/kafka: Nest's Kafka transport and client in lanes (needs @flowtag/mq, kafkajs
// and @nestjs/microservices).
export { FlowTagKafkaServer, type FlowTagKafkaServerOptions } from './kafka-server.ts'
export { FlowTagClientKafka, type FlowTagClientKafkaOptions } from './kafka-client.ts'
export type { FlowTagConsumerOptions } from './message-options.ts'
