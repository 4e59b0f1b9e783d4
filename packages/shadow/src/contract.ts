// The contract between the process that mirrors a request (the mirror sender of @flowtag/service)
// and the comparer. The sender owns it; it is declared here too, structurally the same, so this
// package depends on no framework and no preset.

/** One answer as the mirror sender captured it. */
export interface ShadowAnswer {
  status: number
  /** Node's header shape; names lower-case. */
  headers: Record<string, string | string[] | undefined>
  /** What was captured of the body (at most the sender's cap). */
  body: Buffer
  /** The sender stopped capturing before the body's end. */
  truncated: boolean
}

/** The user's answer and the mirror lane's answer to the same request. */
export interface ShadowPair {
  service: string
  /** The route pattern (`/users/:id`), never the raw URL: it keys bounded statistics. */
  route: string
  method: string
  /** The mirror lane (the candidate). */
  lane: string
  /** The lane that served the user. */
  primaryLane: string
  primary: ShadowAnswer
  mirror: ShadowAnswer
  /** A second answer from the primary's lane to the same request, for learned noise. */
  secondary?: ShadowAnswer
}

export interface ShadowComparer {
  /** Compare one pair; never keeps nor logs a body. */
  compare (pair: ShadowPair): void
  /** Whether the sender should fetch a `secondary` answer for the next pair of this route. */
  needsSecondary?(service: string, route: string): boolean
}
