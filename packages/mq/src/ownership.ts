// Which consumer handles a message: the lane rules of @flowtag/outbound (resolveRoute: the
// service's stable lane and strictness from the same LanesResolver the HTTP dispatcher and the
// gRPC picker read, a RuleSet's `serviceLanes()`), applied to messages instead of requests.
import { resolveRoute, type LaneConfig, type LanesResolver, type Route } from '@flowtag/outbound/lanes'

/**
 * - `permissive` (default): a lane with no live consumer is handled by stable.
 * - `strict`: a lane's messages wait for that lane's consumer; stable never handles them.
 */
export type ConsumerMode = 'permissive' | 'strict'

/**
 * The lane rules of one consumer service at one moment. A lane's lease (`expired` of a
 * LaneConfig) is not applied to messages: the lane consumer and the stable consumer would see
 * it expire at different moments, and a message skipped by both in between would be lost. A
 * lane's messages stay its own while its consumers are live; stopping them hands them to stable.
 */
export interface LanePolicy {
  stable: string
  strict: boolean
}

/** The live lane policy of a consumer service: `lanes(service)` over the options' defaults. */
export class PolicySource {
  readonly #service: string
  readonly #lanes: LanesResolver | undefined
  readonly #defaults: { stable: string, strict: boolean }
  #route: Route | null = null
  #policy: LanePolicy

  constructor (service: string, lanes: LanesResolver | undefined, stable: string, mode: ConsumerMode) {
    this.#service = service
    this.#lanes = lanes
    this.#defaults = { stable, strict: mode === 'strict' }
    this.#policy = Object.freeze({ ...this.#defaults })
  }

  /**
   * Read per message: keep `lanes()` cheap (a cached RuleSet). A resolver that throws counts as
   * no configuration. The same (frozen) object is returned while the policy does not change.
   */
  current (): LanePolicy {
    if (this.#lanes === undefined) return this.#policy
    let cfg: LaneConfig | undefined
    try {
      cfg = this.#lanes(this.#service)
    } catch {
      cfg = undefined
    }
    const route = resolveRoute(cfg, this.#defaults, this.#route)
    if (route !== this.#route) {
      this.#route = route
      if (route.stable !== this.#policy.stable || route.strict !== this.#policy.strict) this.#policy = Object.freeze({ stable: route.stable, strict: route.strict })
    }
    return this.#policy
  }
}

/**
 * The lane whose consumers handle a message of `lane` (undefined: untagged) now: its own lane
 * while that lane has a live consumer, else stable (permissive) or nobody (strict: it waits).
 */
export function ownerOf (lane: string | undefined, policy: LanePolicy, isLive: (lane: string) => boolean): string | undefined {
  if (lane === undefined || lane === policy.stable) return policy.stable
  if (isLive(lane)) return lane
  return policy.strict ? undefined : policy.stable
}

/**
 * Whether a consumer in `consumerLane` handles a message of `lane`. A lane consumer handles its
 * own lane's messages whatever the registry says about it (it is the live consumer); the stable
 * consumer handles what {@link ownerOf} gives to stable.
 */
export function handles (consumerLane: string, lane: string | undefined, policy: LanePolicy, isLive: (lane: string) => boolean): boolean {
  if (consumerLane !== policy.stable) return lane === consumerLane
  return ownerOf(lane, policy, isLive) === policy.stable
}
