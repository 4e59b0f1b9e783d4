// `@flowtag/mq/amqplib`: lanes for amqplib channels and consumers.
export { laneChannel, ROUTING_HEADER, type LaneChannelOptions } from './amqp-producer.ts'
export { AmqpLaneConsumer, amqpConsumerOptionsSchema, ATTEMPTS_HEADER, type AmqpConnection, type AmqpLaneConsumerOptions, type AmqpLaneHandler, type AmqpLaneMessage } from './amqp-consumer.ts'
