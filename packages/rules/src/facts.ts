import type { KeySource } from './schema.ts'

/**
 * What evaluate() knows about a request. Header names are lower case (as Node gives them).
 * `cookies` may be given pre-parsed (e.g. @fastify/cookie's `request.cookies`); when absent or
 * null, cookies are read from `headers.cookie`.
 */
export interface Facts {
  headers: Readonly<Record<string, string | string[] | undefined>>
  query?: Readonly<Record<string, unknown>> | undefined
  cookies?: Readonly<Record<string, string | undefined>> | null | undefined
  /** Client address, IPv4 or IPv6. */
  ip?: string | undefined
  /** Source of randomness for splits without a sticky key (default Math.random). */
  random?: (() => number) | undefined
}

function first (value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0]
  return undefined
}

export function headerOf (facts: Facts, name: string): string | undefined {
  return first(facts.headers[name])
}

export function queryOf (facts: Facts, name: string): string | undefined {
  return facts.query === undefined ? undefined : first(facts.query[name])
}

/** Find one cookie in a Cookie header without building a map. Values are not URI-decoded. */
export function cookieOf (facts: Facts, name: string): string | undefined {
  if (facts.cookies !== undefined && facts.cookies !== null) {
    const v = Object.hasOwn(facts.cookies, name) ? facts.cookies[name] : undefined
    return typeof v === 'string' ? v : undefined
  }
  const header = first(facts.headers.cookie)
  if (header === undefined) return undefined
  let at = 0
  while (at < header.length) {
    while (at < header.length && (header.charCodeAt(at) === 32 || header.charCodeAt(at) === 9)) at++
    const end = header.indexOf(';', at)
    const stop = end === -1 ? header.length : end
    const eq = header.indexOf('=', at)
    if (eq !== -1 && eq < stop && eq - at === name.length && header.startsWith(name, at)) {
      let value = header.slice(eq + 1, stop).trim()
      if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) value = value.slice(1, -1)
      return value
    }
    at = stop + 1
  }
  return undefined
}

/** A key source resolved once: where to read, with the header name already lower-cased. */
export interface CompiledKey {
  readonly kind: 0 | 1 | 2 // header, cookie, query
  readonly name: string
  readonly text: string
}

export function compileKey (source: KeySource): CompiledKey {
  if (source.header !== undefined) return { kind: 0, name: source.header.toLowerCase(), text: `header ${source.header.toLowerCase()}` }
  if (source.cookie !== undefined) return { kind: 1, name: source.cookie, text: `cookie ${source.cookie}` }
  return { kind: 2, name: source.query!, text: `query ${source.query!}` }
}

/** Read a compiled key from the facts. Empty strings count as absent. */
export function readKey (facts: Facts, key: CompiledKey): string | undefined {
  const v = key.kind === 0 ? headerOf(facts, key.name) : key.kind === 1 ? cookieOf(facts, key.name) : queryOf(facts, key.name)
  return v === undefined || v.length === 0 ? undefined : v
}
