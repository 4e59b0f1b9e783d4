// What the naming and config parts of one client share.
import type { Logger } from './logger.ts'
import type { ResolvedOptions } from './options.ts'
import type { ServerPool } from './server-pool.ts'
import type { SnapshotStore } from './snapshot.ts'

export interface ClientContext {
  options: ResolvedOptions
  pool: ServerPool
  snapshots: SnapshotStore
  logger: Logger
  /** Aborted by close(): ends every wait, poll and request. */
  closing: AbortSignal
}
