// Instance selection: what can take traffic, and one of them by weight.
import type { Instance } from './discovery.ts'

/** Healthy, enabled instances with a positive weight. */
export function selectHealthy (list: readonly Instance[]): Instance[] {
  return list.filter((i) => i.healthy && i.enabled && i.weight > 0)
}

/** One instance picked at random in proportion to its weight; undefined for an empty list. */
export function selectOne (list: readonly Instance[], random: () => number = Math.random): Instance | undefined {
  const candidates = list.filter((i) => i.weight > 0)
  const total = candidates.reduce((sum, i) => sum + i.weight, 0)
  if (candidates.length === 0 || total <= 0) return undefined
  let point = random() * total
  for (const i of candidates) {
    point -= i.weight
    if (point < 0) return i
  }
  return candidates[candidates.length - 1]
}
