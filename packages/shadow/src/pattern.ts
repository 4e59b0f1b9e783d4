// JSON-pointer patterns (RFC 6901 pointers whose segments may be `*`, one segment, or `**`, any
// number of segments, none included), and the pointers of the fields that differ.

/** A pattern's segments, unescaped (`~1` → `/`, `~0` → `~`); the root `''` has none. */
export function parsePointer (pointer: string): string[] {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** The pointer of a path: each segment escaped (`~` → `~0`, `/` → `~1`). */
export function toPointer (segments: readonly string[]): string {
  let out = ''
  for (const s of segments) out += '/' + s.replace(/~/g, '~0').replace(/\//g, '~1')
  return out
}

/** Whether `path` is matched by `pattern` (`*` one segment, `**` zero or more). */
export function matchesPattern (pattern: readonly string[], path: readonly string[], p = 0, i = 0): boolean {
  for (;;) {
    if (p === pattern.length) return i === path.length
    const seg = pattern[p]!
    if (seg === '**') {
      // `**` at the end matches whatever is left; otherwise try every split.
      if (p === pattern.length - 1) return true
      for (let k = i; k <= path.length; k++) if (matchesPattern(pattern, path, p + 1, k)) return true
      return false
    }
    if (i === path.length || (seg !== '*' && seg !== path[i])) return false
    p++
    i++
  }
}
