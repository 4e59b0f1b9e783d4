// Which instance serves a request: the lane rules of ./lanes.ts over the table's current index.
import type { Route } from './lanes.ts'
import type { Member, ServiceTable } from './service-table.ts'

export type { Route }

/**
 * Pick a member for `tag` (undefined for untagged traffic). Throws a coded OutboundError when
 * nothing can serve it. `exclude` (retries only) lists members already tried; that path is O(n).
 */
export function select (table: ServiceTable, tag: string | undefined, route: Route, exclude?: readonly Member[]): Member {
  return table.index.select(tag, route, exclude)
}
