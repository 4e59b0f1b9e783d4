import { sweep, type Span } from './ranges.ts'

/**
 * String prefixes as sorted ranges: the strings starting with `p` are exactly those in
 * [p, successor(p)) in UTF-16 code-unit order, so "which prefixes does this value start
 * with?" is one binary search over the sorted range ends, whatever the number of prefixes.
 * Chosen over a character trie because a trie walk costs one map lookup per character of the
 * request's value and hands back one list per matching depth, where this hands back one.
 */
export class PrefixRanges {
  readonly #points: string[]
  readonly #lists: Array<readonly number[] | undefined>

  /** `entries`: [prefix, id] pairs, any order. */
  constructor (entries: ReadonlyArray<readonly [string, number]>) {
    const ends = new Set<string>()
    const bounds = entries.map(([p]) => {
      const next = successor(p)
      ends.add(p)
      if (next !== undefined) ends.add(next)
      return next
    })
    // Default sort compares UTF-16 code units, the same order as `<` on strings.
    this.#points = [...ends].sort()
    const at = new Map(this.#points.map((p, i) => [p, i]))
    const spans: Span[] = entries.map(([p, id], i) => ({ start: at.get(p)!, end: bounds[i] === undefined ? -1 : at.get(bounds[i]!)!, id }))
    this.#lists = sweep(spans, this.#points.length)
  }

  /** The ids (ascending) of every prefix `value` starts with, or undefined. */
  lookup (value: string): readonly number[] | undefined {
    const points = this.#points
    // the last point <= value
    let lo = 0
    let hi = points.length - 1
    if (hi < 0 || value < points[0]!) return undefined
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (points[mid]! <= value) lo = mid
      else hi = mid - 1
    }
    return this.#lists[lo]
  }
}

/** The smallest string greater than every string starting with `p`; undefined when there is none. */
function successor (p: string): string | undefined {
  for (let k = p.length - 1; k >= 0; k--) {
    const c = p.charCodeAt(k)
    if (c < 0xffff) return p.slice(0, k) + String.fromCharCode(c + 1)
  }
  return undefined
}
