// When an empty instance list is the truth (empty protection, `namingProtectEmpty`). A watched
// service whose list goes from some instances to none is either news (its last instance was
// deregistered, or died) or a server that lost its state (restarted empty, or answering while it
// fails) and has not seen the instances register again yet. Such a server lists them again within
// `namingRecoveryHoldMs`: they register again when their connection comes back or at their next
// beat. So an empty answer is the truth once the server is known to have run, without a restart
// and without failing, for that long while it listed none; before that it is held.
//
// This is the one rule, whatever the transport (service-watch.ts applies it to every answer:
// gRPC pushes and subscribe answers, HTTP v1/v3 polls, UDP pushes):
// - known up since: the set-up of the gRPC connection the answer came on, since a restart ends
//   the connection (`ServiceSnapshot.upSince`). Over HTTP nothing tells a restarted server apart,
//   so since the first empty answer of the run: the list must stay empty for the whole hold, and
//   the poll that follows the hold confirms it.
// - no trouble since: the last transport failure of any server (connection error, timeout, 5xx,
//   a dead gRPC connection), the recovery after an outage, a gRPC reconnect. A per-request error
//   (a refusal, an answer too large) is not trouble: the server answered.
// Not held at all: an empty first load, and an empty list after this client deregistered every
// instance held itself (it knows that is news).

export interface EmptyListEvidence {
  /** When the answering server was last seen to start running (gRPC connection set-up), undefined when nothing tells (HTTP). */
  upSince: number | undefined
  /** When this client got the first empty answer of the current run of them (ms since epoch). */
  emptySince: number
  /** The last transport failure, recovery or reconnect (ms since epoch; 0: none). */
  troubleAt: number
}

/** When (ms since epoch) the empty answer may be applied: at or before now, it is the truth. */
export function emptyListAppliesAt (e: EmptyListEvidence, holdMs: number): number {
  return Math.max(e.upSince ?? e.emptySince, e.troubleAt) + holdMs
}
