/** Number of hash buckets: a weight of w% owns buckets [start, start + w * 100). */
export const BUCKETS = 10000

/**
 * A stable bucket 0..9999 for `key` under `salt`: FNV-1a over the UTF-16 code units of
 * salt, a separator and key, then murmur3's 32-bit finaliser so that near-identical keys
 * (user-1, user-2, ...) spread evenly. Stable across processes, versions and platforms;
 * allocation-free.
 */
export function bucketOf (key: string, salt: string): number {
  return bucketFromSeed(key, saltSeed(salt))
}

/** The hash state after the salt and separator: computed once per split at compile time. */
export function saltSeed (salt: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < salt.length; i++) {
    h ^= salt.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= 0x1f // unit separator between salt and key
  return Math.imul(h, 0x01000193)
}

/** bucketOf() with the salt already folded in (see saltSeed). */
export function bucketFromSeed (key: string, seed: number): number {
  let h = seed
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) % BUCKETS
}
