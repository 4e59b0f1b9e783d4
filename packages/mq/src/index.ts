// `@flowtag/mq`: the broker-neutral core of message lanes. The clients' adapters are at
// `@flowtag/mq/kafkajs` and `@flowtag/mq/amqplib`.
export { carrierOf, laneHeaders, withLaneHeaders, shadowSuppressedCount, type MessageHeaders, type SignLane } from './headers.ts'
export { FlowReader, type MessageFlow, type MessageTrust } from './flow-reader.ts'
export { LaneWatch, CONSUMER_METADATA, type LaneChangeListener } from './lane-watch.ts'
export { ownerOf, handles, PolicySource, type ConsumerMode, type LanePolicy } from './ownership.ts'
export { ConsumerMetrics, LANE_ATTRIBUTE, VERSION_ATTRIBUTE, OUTCOME_ATTRIBUTE, FALLBACK_ATTRIBUTE, type ConsumerStats, type LaneCounts, type ConsumerIdentity } from './metrics.ts'
export { consumerOptionsSchema, type ConsumerOptions } from './options.ts'
export { MqError, errorCodes, type MqErrorCode } from './errors.ts'
