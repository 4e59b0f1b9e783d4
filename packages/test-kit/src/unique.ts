import { randomUUID } from 'node:crypto'

/**
 * A name no other run uses (`<prefix>-<8 hex>`), so tests against a shared or reused real Nacos
 * never see each other's services, configs or leftovers.
 */
export function unique (prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`
}
