import type { RuleSource } from '../source.ts'

/** A source holding a value in memory; `set()` publishes a new version (tests, programmatic rules). */
export interface StaticSource extends RuleSource {
  set(document: string | object | undefined): void
}

function text (document: string | object | undefined): string | undefined {
  return document === undefined || typeof document === 'string' ? document : JSON.stringify(document)
}

/** A RuleSource over a fixed document (JSON text or an object, serialised once). */
export function staticSource (document: string | object | undefined): StaticSource {
  let current = text(document)
  const listeners = new Set<(raw: string | undefined) => void>()
  return {
    name: 'static',
    read: () => Promise.resolve(current),
    watch (onDocument) {
      listeners.add(onDocument)
      return () => { listeners.delete(onDocument) }
    },
    set (next) {
      current = text(next)
      for (const l of [...listeners]) l(current)
    },
    close () { listeners.clear() }
  }
}
