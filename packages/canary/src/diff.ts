// What changes between two JSON documents, path by path (for `flowtag rules diff`).

export interface Change {
  path: string
  kind: 'added' | 'removed' | 'changed'
  before?: unknown
  after?: unknown
  text: string
}

const show = (v: unknown): string => JSON.stringify(v)

export function diffJson (before: unknown, after: unknown, path = ''): Change[] {
  if (isObject(before) && isObject(after)) {
    const out: Change[] = []
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const p = path === '' ? k : `${path}.${k}`
      if (!(k in after)) out.push({ path: p, kind: 'removed', before: before[k], text: `- ${p}: ${show(before[k])}` })
      else if (!(k in before)) out.push({ path: p, kind: 'added', after: after[k], text: `+ ${p}: ${show(after[k])}` })
      else out.push(...diffJson(before[k], after[k], p))
    }
    return out
  }
  if (show(before) === show(after)) return []
  return [{ path, kind: 'changed', before, after, text: `~ ${path}: ${show(before)} → ${show(after)}` }]
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null
}
