/**
 * Which ids cover each stretch of an ordered space, for lookups by binary search. Both CIDR
 * blocks (address ranges) and string prefixes ([p, successor of p)) are intervals; once the
 * interval ends are sorted, one sweep gives, for every elementary stretch between two
 * consecutive ends, the sorted ids of the intervals covering it. A lookup is then one binary
 * search and one ready-made list, however many intervals there are or how they nest.
 */

/** An interval as positions in the sorted list of distinct ends; `end` -1 runs to the top of the space. */
export interface Span {
  readonly start: number
  readonly end: number
  readonly id: number
}

/**
 * For each point i, the ids (ascending, distinct) whose spans cover [point i, point i + 1), or
 * undefined when none do. Consecutive stretches with the same ids share one array.
 */
export function sweep (spans: readonly Span[], points: number): Array<readonly number[] | undefined> {
  // The ids opening and closing at each point, bucketed by point (counting sort, no per-point arrays).
  const bucket = (pick: (s: Span) => number) => {
    const head = new Int32Array(points + 1)
    for (const s of spans) if (pick(s) !== -1) head[pick(s) + 1]!++
    for (let i = 0; i < points; i++) head[i + 1]! += head[i]!
    const ids = new Int32Array(head[points]!)
    const fill = head.slice(0, points)
    for (const s of spans) if (pick(s) !== -1) ids[fill[pick(s)]!++] = s.id
    return { head, ids }
  }
  const opens = bucket((s) => s.start)
  const closes = bucket((s) => s.end)
  // An id may own several (nested or repeated) spans: it stays active while any is open.
  const count = new Map<number, number>()
  let changed = false
  const out: Array<readonly number[] | undefined> = new Array(points)
  let current: readonly number[] | undefined
  for (let i = 0; i < points; i++) {
    for (let k = closes.head[i]!; k < closes.head[i + 1]!; k++) {
      const id = closes.ids[k]!
      const n = count.get(id)! - 1
      if (n === 0) { count.delete(id); changed = true } else count.set(id, n)
    }
    for (let k = opens.head[i]!; k < opens.head[i + 1]!; k++) {
      const id = opens.ids[k]!
      const n = count.get(id) ?? 0
      if (n === 0) changed = true
      count.set(id, n + 1)
    }
    if (changed) {
      current = count.size === 0 ? undefined : [...count.keys()].sort((a, b) => a - b)
      changed = false
    }
    out[i] = current
  }
  return out
}
