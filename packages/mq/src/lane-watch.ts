// Which lanes have a live consumer right now, from the registry's push (the Discovery of
// @flowtag/outbound's contract; the @flowtag/nacos naming client fits): a lane is live for a
// consumer key (a Kafka group, a RabbitMQ queue) while the consumer service has an eligible
// (healthy, enabled, weight > 0) instance in that lane whose `flowtag.consumer` metadata names
// the key. Nothing is polled: every change is pushed by the registry.
import { eligible, laneOf, type Discovery, type Instance } from '@flowtag/outbound/lanes'

/** Instance metadata naming the consumer keys (comma-separated) an instance consumes for. */
export const CONSUMER_METADATA = 'flowtag.consumer'

export type LaneChangeListener = (change: { live: ReadonlySet<string>, came: readonly string[], gone: readonly string[] }) => void

export class LaneWatch {
  readonly service: string
  readonly #discovery: Discovery
  readonly #key: string
  readonly #labelKey: string
  readonly #stable: () => string
  readonly #listeners = new Set<LaneChangeListener>()
  #live: ReadonlySet<string> = new Set()
  #off: (() => void) | undefined
  #changedAt = 0

  /**
   * @param key the consumer key (Kafka group base name, RabbitMQ queue) in `flowtag.consumer`
   * @param stable the stable lane now (unlabelled instances belong to it)
   */
  constructor (discovery: Discovery, service: string, key: string, labelKey: string, stable: () => string) {
    this.#discovery = discovery
    this.service = service
    this.#key = key
    this.#labelKey = labelKey
    this.#stable = stable
  }

  /** Subscribe, then read the current list (a change in between is not missed). */
  async start (): Promise<void> {
    if (this.#off !== undefined) return
    this.#off = this.#discovery.subscribe(this.service, (change) => this.#update(change.instances))
    this.#update(await this.#discovery.instances(this.service))
  }

  /** The lanes with a live consumer of this key now. */
  get live (): ReadonlySet<string> {
    return this.#live
  }

  /** When the live set last changed (`Date.now()` ms; 0 before any). */
  get changedAt (): number {
    return this.#changedAt
  }

  isLive (lane: string): boolean {
    return this.#live.has(lane)
  }

  /** Called after every change of the live set, with the lanes that came and went. Returns the unsubscribe. */
  onChange (listener: LaneChangeListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  close (): void {
    this.#off?.()
    this.#off = undefined
    this.#listeners.clear()
  }

  #counts (i: Instance): boolean {
    if (!eligible(i)) return false
    const keys = i.metadata[CONSUMER_METADATA]
    return keys !== undefined && keys.split(',').some((k) => k.trim() === this.#key)
  }

  #update (instances: readonly Instance[]): void {
    const stable = this.#stable()
    const next = new Set<string>()
    for (const i of instances) if (this.#counts(i)) next.add(laneOf(i, this.#labelKey, stable))
    const came = [...next].filter((l) => !this.#live.has(l))
    const gone = [...this.#live].filter((l) => !next.has(l))
    if (came.length === 0 && gone.length === 0) return
    this.#live = next
    this.#changedAt = Date.now()
    for (const listener of this.#listeners) {
      try {
        listener({ live: next, came, gone })
      } catch {
        // a listener's fault must not stop the others
      }
    }
  }
}
