// Coded errors of @flowtag/mq, on the shared FlowTagError base.
import { FlowTagError } from '@flowtag/errors'

export const errorCodes = {
  /** Options are invalid (the message names the field). */
  BAD_OPTION: 'FLOWTAG_MQ_BAD_OPTION',
  /** run() was called twice, or after stop(). */
  LIFECYCLE: 'FLOWTAG_MQ_LIFECYCLE',
  /** run() could not read the consumers of the service from discovery (Nacos unreachable, no snapshot). */
  DISCOVERY: 'FLOWTAG_MQ_DISCOVERY',
  /** The broker refused a lane topology step (declaring a lane queue, reading a group's offsets). */
  BROKER: 'FLOWTAG_MQ_BROKER'
} as const

export type MqErrorCode = typeof errorCodes[keyof typeof errorCodes]

/** Every error @flowtag/mq throws; `instanceof` holds across duplicate installs. */
export class MqError extends FlowTagError {
  static override readonly brand: string = 'flowtag.mq.error'
  declare readonly code: MqErrorCode

  constructor (code: MqErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}
