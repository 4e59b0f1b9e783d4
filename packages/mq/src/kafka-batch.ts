// One kafkajs batch through the lane rules: each message is decided (handle or skip), handled
// inside its flow, and resolved either way, so the group commits over what it skips.
import type { EachBatchPayload } from 'kafkajs'
import type { FlowContext } from '@flowtag/context'
import type { ConsumerCore, Verdict } from './consumer-core.ts'
import type { KafkaLaneHandler } from './kafka-types.ts'

/** Decides, after the lane rules, whether this reader handles the message. */
export type Admit = (v: Verdict) => boolean

/** @param own this reader is the consumer's own group (it counts skips, refused tags and lag); a stand-in is not */
export async function processBatch (p: EachBatchPayload, core: ConsumerCore, handler: KafkaLaneHandler, admit: Admit, own = true): Promise<void> {
  const { batch, resolveOffset, heartbeat, pause, isRunning, isStale } = p
  if (own) core.metrics.lag(`${batch.topic}/${batch.partition}`, Number(batch.offsetLag()))
  for (const message of batch.messages) {
    if (!isRunning() || isStale()) return
    const v = core.verdict(message.headers, core.policy, own)
    if (admit(v)) {
      const flow: FlowContext = v.flow
      await core.handle(v, () => handler({ topic: batch.topic, partition: batch.partition, message, heartbeat, pause, flow, fallback: v.fallback }))
    } else if (own) {
      core.metrics.skipped(v.lane)
    }
    resolveOffset(message.offset)
    await heartbeat()
  }
}
