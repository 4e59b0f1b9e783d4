import type { Cidr } from './ip.ts'
import { sweep, type Span } from './ranges.ts'

/**
 * CIDR blocks as sorted address ranges (128-bit, IPv4 held as ::ffff:a.b.c.d like everywhere
 * else, so v4 blocks, v6 blocks and IPv4-mapped clients share one space). A lookup is a binary
 * search over the range ends: about log2(2n) four-word compares, 15 for 10,000 blocks. A binary
 * trie would walk up to 128 levels (96 of them for the mapped prefix alone) and collect one
 * list per level that holds a block; the sweep has merged those lists ahead of time.
 */
export class CidrRanges {
  /** The sorted range ends, four words each. */
  readonly #points: Uint32Array
  readonly #lists: Array<readonly number[] | undefined>

  /** `entries`: [block, id] pairs, any order. */
  constructor (entries: ReadonlyArray<readonly [Cidr, number]>) {
    // Every block's first address and the address after its last, four words each: the
    // start of block i at raw[8i], its end at raw[8i + 4] (absent when it reaches the top).
    const raw = new Uint32Array(entries.length * 8)
    const refs: number[] = []
    entries.forEach(([cidr], i) => {
      raw.set(cidr.words, i * 8)
      refs.push(i * 2)
      if (afterLast(cidr, raw, i * 8 + 4)) refs.push(i * 2 + 1)
    })
    refs.sort((a, b) => compare(raw, a * 4, raw, b * 4))
    // Distinct ends in order; rank[ref] is the position of that end among them.
    const rank = new Int32Array(entries.length * 2).fill(-1)
    const points: number[] = []
    for (let k = 0; k < refs.length; k++) {
      if (k === 0 || compare(raw, refs[k - 1]! * 4, raw, refs[k]! * 4) !== 0) points.push(refs[k]!)
      rank[refs[k]!] = points.length - 1
    }
    this.#points = new Uint32Array(points.length * 4)
    points.forEach((ref, i) => this.#points.set(raw.subarray(ref * 4, ref * 4 + 4), i * 4))
    const spans: Span[] = entries.map(([, id], i) => ({ start: rank[i * 2]!, end: rank[i * 2 + 1]!, id }))
    this.#lists = sweep(spans, points.length)
  }

  /** The ids (ascending) of every block holding the 4-word address, or undefined. */
  lookup (addr: Uint32Array): readonly number[] | undefined {
    const p = this.#points
    let lo = 0
    let hi = (p.length >> 2) - 1
    if (hi < 0 || greater(p, 0, addr)) return undefined
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (greater(p, mid * 4, addr)) hi = mid - 1
      else lo = mid
    }
    return this.#lists[lo]
  }
}

/** True when the point at p[at..at+3] is above `addr`. */
function greater (p: Uint32Array, at: number, addr: Uint32Array): boolean {
  for (let w = 0; w < 4; w++) {
    const a = p[at + w]!
    const b = addr[w]!
    if (a !== b) return a > b
  }
  return false
}

function compare (a: Uint32Array, i: number, b: Uint32Array, j: number): number {
  for (let w = 0; w < 4; w++) {
    const x = a[i + w]!
    const y = b[j + w]!
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

/** Write the first address after the block at out[at..at+3]; false when the block reaches the top of the space. */
function afterLast (cidr: Cidr, out: Uint32Array, at: number): boolean {
  let carry = 1
  for (let w = 3; w >= 0; w--) {
    const sum = ((cidr.words[w]! | ~cidr.mask[w]!) >>> 0) + carry
    out[at + w] = sum >>> 0
    carry = sum > 0xffffffff ? 1 : 0
  }
  return carry === 0
}
