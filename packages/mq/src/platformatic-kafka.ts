// `@flowtag/mq/platformatic-kafka`: lanes for @platformatic/kafka producers and consumers.
export { laneProducer, type PlatformaticLaneProducerOptions } from './platformatic-producer.ts'
export { PlatformaticLaneConsumer, platformaticConsumerOptionsSchema, type PlatformaticLaneConsumerOptions, type PlatformaticLaneHandler, type PlatformaticLaneMessage } from './platformatic-consumer.ts'
