// A repeating async task on ONE timer chain. kick() runs it now, or right after the run in
// flight: a recovery that wants a beat or poll at once never starts a second chain beside the
// scheduled one.

export class Ticker {
  readonly #task: () => Promise<number>
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #kicked = false
  #stopped = false
  #last = 1000

  /** `task` does one run and resolves with the delay (ms) until the next; it must not reject. */
  constructor (task: () => Promise<number>) {
    this.#task = task
  }

  /** Schedule the next run in `delay` ms (replacing a scheduled one). */
  schedule (delay: number): void {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.#run(), delay)
  }

  /** Run now; if a run is in flight, run again as soon as it ends. */
  kick (): void {
    if (this.#stopped) return
    if (this.#running !== undefined) {
      this.#kicked = true
      return
    }
    clearTimeout(this.#timer)
    void this.#run()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  /** Resolves once no run is in flight (e.g. before a deregister that must land after a beat). */
  async idle (): Promise<void> {
    await this.#running
  }

  async #run (): Promise<void> {
    this.#timer = undefined
    // A task that breaks its promise not to reject still keeps its chain (at the last pace).
    const run = this.#task().catch(() => this.#last)
    this.#running = run.then(() => undefined)
    let next = await run
    this.#running = undefined
    this.#last = next
    if (this.#kicked) {
      this.#kicked = false
      next = 0
    }
    this.schedule(next)
  }
}
