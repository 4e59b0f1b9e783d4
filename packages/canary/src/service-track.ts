// What the controller keeps of one judged service (the spec's service, or each service of a lane):
// its step's window, its last reading, why the last read failed, and its sequential evidence.
import type { Judgement } from './judge.ts'
import { SequentialJudge } from './sequential-judge.ts'
import type { Reading } from './scrape.ts'
import type { WindowTracker } from './tracker.ts'

export class ServiceTrack {
  readonly service: string
  kind: 'http' | 'consumer'
  /** The step's window, from the reading it opened at; undefined until it opens. */
  window: WindowTracker | undefined
  previous: Reading | undefined
  /** Why the last reading failed; undefined once one succeeds. A check then has no data. */
  readError: Error | undefined
  /** Evidence of `judge: 'sequential'`, kept across the canary's steps (not across controller restarts). */
  readonly sequential = new SequentialJudge()
  lastJudgement: Judgement | undefined

  constructor (service: string, kind: 'http' | 'consumer' = 'http') {
    this.service = service
    this.kind = kind
  }
}
