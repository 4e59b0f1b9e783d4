// One kafkajs batch through the lane rules: each message is decided (handle or skip), handled
// inside its flow, and resolved either way, so the group commits over what it skips.
import type { EachBatchPayload } from 'kafkajs'
import type { ConsumerCore } from './consumer-core.ts'
import { laneStep, type Admit } from './kafka-lanes.ts'
import type { KafkaLaneHandler } from './kafka-types.ts'

/** @param own this reader is the consumer's own group (it counts skips, refused tags and lag); a stand-in is not */
export async function processBatch (p: EachBatchPayload, core: ConsumerCore, handler: KafkaLaneHandler, admit: Admit, own = true): Promise<void> {
  const { batch, resolveOffset, heartbeat, pause, isRunning, isStale } = p
  if (own) core.metrics.lag(`${batch.topic}/${batch.partition}`, Number(batch.offsetLag()))
  for (const message of batch.messages) {
    if (!isRunning() || isStale()) return
    const step = laneStep(core, message.headers, admit, own, (v) => handler({ topic: batch.topic, partition: batch.partition, message, heartbeat, pause, flow: v.flow, fallback: v.fallback }))
    if (step !== undefined) await step
    resolveOffset(message.offset)
    await heartbeat()
  }
}
