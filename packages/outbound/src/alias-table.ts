// Weighted choice in O(1) per pick: Vose's alias method. Building is O(n) and happens only when
// a list or an ejection changes; a pick is one random number, one array read and one compare.

export class AliasTable<T> {
  readonly items: readonly T[]
  readonly #prob: Float64Array
  readonly #alias: Uint32Array
  readonly #n: number

  /** `weights[i]` is the weight of `items[i]`; every weight must be finite and > 0. */
  constructor (items: readonly T[], weights: readonly number[]) {
    const n = items.length
    if (n === 0 || weights.length !== n) throw new RangeError('AliasTable needs one positive weight per item')
    this.items = items
    this.#n = n
    this.#prob = new Float64Array(n)
    this.#alias = new Uint32Array(n)

    let total = 0
    for (const w of weights) total += w
    // Scaled so that the average column holds exactly 1.
    const scaled = new Float64Array(n)
    const small: number[] = []
    const large: number[] = []
    for (let i = 0; i < n; i++) {
      scaled[i] = ((weights[i] as number) * n) / total
      if ((scaled[i] as number) < 1) small.push(i)
      else large.push(i)
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop() as number
      const l = large.pop() as number
      this.#prob[s] = scaled[s] as number
      this.#alias[s] = l
      scaled[l] = (scaled[l] as number) + (scaled[s] as number) - 1
      if ((scaled[l] as number) < 1) small.push(l)
      else large.push(l)
    }
    // What is left is 1 up to rounding error.
    for (const i of large) this.#prob[i] = 1
    for (const i of small) this.#prob[i] = 1
  }

  get size (): number {
    return this.#n
  }

  /** Index of a weighted random item; `u` in [0, 1) (Math.random() by default). */
  pickIndex (u: number = Math.random()): number {
    const x = u * this.#n
    const i = x | 0
    // The fractional part of x is a second uniform number, independent of i.
    return x - i < (this.#prob[i] as number) ? i : (this.#alias[i] as number)
  }

  /** The chance of each item being picked, index for index (O(n); for tests and diagnostics). */
  chances (): number[] {
    const out = new Array<number>(this.#n).fill(0)
    for (let i = 0; i < this.#n; i++) {
      const p = this.#prob[i] as number
      out[i] = (out[i] as number) + p / this.#n
      if (p < 1) out[this.#alias[i] as number] = (out[this.#alias[i] as number] as number) + (1 - p) / this.#n
    }
    return out
  }

  pick (u?: number): T {
    return this.items[this.pickIndex(u)] as T
  }
}
