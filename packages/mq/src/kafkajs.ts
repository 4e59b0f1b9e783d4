// `@flowtag/mq/kafkajs`: lanes for kafkajs producers and consumers.
export { laneProducer, type LaneProducerOptions } from './kafka-producer.ts'
export { KafkaLaneConsumer, kafkaConsumerOptionsSchema, type KafkaLaneConsumerOptions, type KafkaLaneHandler, type KafkaLaneMessage } from './kafka-consumer.ts'
