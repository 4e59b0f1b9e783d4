import type { EachMessagePayload } from 'kafkajs'
import type { FlowContext } from '@flowtag/context'

/** What the handler is given: kafkajs' EachMessagePayload plus the message's flow. */
export interface KafkaLaneMessage extends EachMessagePayload {
  /** The flow the handler runs in (also `currentFlow()`). */
  flow: FlowContext
  /** Handled by stable for a lane with no live consumer. */
  fallback: boolean
}

export type KafkaLaneHandler = (payload: KafkaLaneMessage) => Promise<void> | void
