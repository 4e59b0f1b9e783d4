// Polling, the one way: every fixture and test that waits for something to become true uses it.
import { setTimeout as sleep } from 'node:timers/promises'

/** What `check` yields once it holds: anything but `false`, `undefined` and `null`. */
export type Held<T> = Exclude<T, false | undefined | null>

/**
 * Call `check` until it returns something other than `false`, `undefined` or `null`, and resolve
 * with that value. Bounded: rejects after `timeoutMs` with an error naming `what`. An error thrown
 * by `check` rejects at once (a broken probe is not a slow one).
 *
 * @param what what is awaited, for the timeout message ("v2 instance to be ejected")
 * @param check a condition (boolean) or a probe (a value once there), sync or async
 * @param timeoutMs @default 10000 (generous: the machines are busy)
 * @param stepMs pause between checks @default 25
 */
export async function waitFor<T> (what: string, check: () => T | Promise<T>, timeoutMs = 10_000, stepMs = 25): Promise<Held<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== false && v !== undefined && v !== null) return v as Held<T>
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(stepMs)
  }
}
