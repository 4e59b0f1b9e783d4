// What differs between two answers: the status, chosen headers and the body. A JSON body (both
// answers say so in content-type, both parse) is compared structurally: key order ignored, numbers
// by value (1 and 1.0 are one number once parsed), arrays by index; each field that differs is
// named by its JSON pointer with array indices as `*`, so a field's counts do not split by
// position and stay bounded. Any other body, and a body over the cap or truncated by the sender,
// is compared byte for byte over what was captured. Nothing here keeps or logs a body.
import type { ShadowAnswer } from './contract.ts'
import type { NormalizeRule } from './options.ts'
import { matchesPattern, parsePointer } from './pattern.ts'

/** The field of a status difference. */
export const STATUS_FIELD = 'status'
/** The field of a whole body that differs (not JSON, truncated, or not the same JSON type at the root). */
export const BODY_FIELD = 'body'
/** The field of a chosen header: `header:<name>`. */
export const headerField = (name: string): string => `header:${name}`

/** Past this depth a JSON subtree is compared as a whole (no stack is spent on hostile nesting). */
const MAX_DEPTH = 64

/** Declared noise, compiled once. */
export interface Declared {
  ignore: string[][]
  normalize: Array<{ pattern: string[], rule: NormalizeRule }>
}

export function compileDeclared (ignore: readonly string[], normalize: readonly NormalizeRule[]): Declared {
  return {
    ignore: ignore.map(parsePointer),
    normalize: normalize.map((rule) => ({ pattern: parsePointer(rule.path), rule }))
  }
}

export interface DiffOptions {
  headers: readonly string[]
  maxBodyBytes: number
  declared: Declared
  /** At most this many fields are named per pair. */
  maxFields: number
}

export interface AnswerDiff {
  /** The fields that differ (beyond declared noise), each once. */
  fields: string[]
  /** A body was over the cap or truncated by the sender: compared byte for byte over what was captured. */
  truncated: boolean
}

const JSON_TYPE = /[/+]json(?:\s*;|\s*$)/i

function contentType (a: ShadowAnswer): string {
  const v = a.headers['content-type']
  return Array.isArray(v) ? v.join(', ') : (v ?? '')
}

// the last content-type tested: a service answers with one or two, so the regex rarely runs
let lastType = ''
let lastIsJson = false
function isJson (a: ShadowAnswer): boolean {
  const type = contentType(a)
  if (type !== lastType) {
    lastIsJson = JSON_TYPE.test(type)
    lastType = type
  }
  return lastIsJson
}

function headerValue (a: ShadowAnswer, name: string): string | undefined {
  const v = a.headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

type Parsed = { ok: true, value: unknown } | { ok: false }

function parseJson (body: Buffer): Parsed {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) }
  } catch {
    return { ok: false }
  }
}

/**
 * Parsed JSON bodies kept for the length of one compare(): the primary, diffed against both the
 * secondary and the mirror, is parsed once.
 */
export type ParseMemo = Map<ShadowAnswer, Parsed>

function parsed (a: ShadowAnswer, memo: ParseMemo | undefined): Parsed {
  let p = memo?.get(a)
  if (p === undefined) {
    p = parseJson(a.body)
    memo?.set(a, p)
  }
  return p
}

/** The fields that differ between two answers. */
export function diffAnswers (a: ShadowAnswer, b: ShadowAnswer, o: DiffOptions, memo?: ParseMemo): AnswerDiff {
  const fields = new Set<string>()
  if (a.status !== b.status) fields.add(STATUS_FIELD)
  for (const name of o.headers) if (headerValue(a, name) !== headerValue(b, name)) fields.add(headerField(name))
  const truncated = a.truncated || b.truncated || a.body.length > o.maxBodyBytes || b.body.length > o.maxBodyBytes
  if (truncated) {
    if (!a.body.subarray(0, o.maxBodyBytes).equals(b.body.subarray(0, o.maxBodyBytes))) fields.add(BODY_FIELD)
    return { fields: [...fields], truncated }
  }
  if (a.body.equals(b.body)) return { fields: [...fields], truncated }
  if (isJson(a) && isJson(b)) {
    const ja = parsed(a, memo)
    const jb = parsed(b, memo)
    if (ja.ok && jb.ok) {
      const diff = new JsonDiff(o.declared, fields, fields.size + o.maxFields)
      diff.walk(ja.value, jb.value, diff.paths ? [] : undefined, '', 0)
      return { fields: [...fields], truncated }
    }
  }
  fields.add(BODY_FIELD)
  return { fields: [...fields], truncated }
}

type JsonType = 'null' | 'array' | 'object' | 'string' | 'number' | 'boolean'

function typeOf (v: unknown): JsonType {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v as JsonType
}

/** A stable text of a JSON value (object keys sorted), for `sorted` and for subtrees past MAX_DEPTH. */
function canonical (v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']'
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return '{' + Object.keys(o).sort().map((k) => JSON.stringify(k) + ':' + canonical(o[k])).join(',') + '}'
  }
  return JSON.stringify(v)
}

function sameCanonical (a: unknown, b: unknown): boolean {
  try {
    return canonical(a) === canonical(b)
  } catch {
    return false // nested too deep even for this: counted as a difference, never a crash
  }
}

function normalized (v: unknown, rule: NormalizeRule): unknown {
  if ('round' in rule) return typeof v === 'number' ? Number(v.toFixed(rule.round)) : v
  switch (rule.as) {
    case 'trim': return typeof v === 'string' ? v.trim() : v
    case 'lowercase': return typeof v === 'string' ? v.toLowerCase() : v
    case 'sorted': return Array.isArray(v) ? v.map((e) => [canonical(e), e] as const).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)).map((e) => e[1]) : v
    case 'length': return typeof v === 'string' || Array.isArray(v) ? v.length : v
    case 'type': return typeOf(v)
  }
}

/** One pointer segment, escaped (`~` → `~0`, `/` → `~1`). */
function segment (key: string): string {
  return key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key
}

class JsonDiff {
  readonly #declared: Declared
  readonly #out: Set<string>
  readonly #max: number
  /** Whether concrete paths are needed (declared noise to match them against); none: not built. */
  readonly paths: boolean

  constructor (declared: Declared, out: Set<string>, max: number) {
    this.#declared = declared
    this.#out = out
    this.#max = max
    this.paths = declared.ignore.length > 0 || declared.normalize.length > 0
  }

  #ignored (path: readonly string[] | undefined): boolean {
    if (path === undefined) return false
    for (const p of this.#declared.ignore) if (matchesPattern(p, path)) return true
    return false
  }

  #add (field: string): void {
    if (this.#out.size < this.#max) this.#out.add(field)
  }

  /**
   * `path`: the concrete segments (array indices as numbers), matched by the declared patterns,
   * undefined when none are declared; `field`: the pointer with array indices as `*`, built as the
   * walk goes down (no array per level).
   */
  walk (a: unknown, b: unknown, path: string[] | undefined, field: string, depth: number): void {
    if (this.#out.size >= this.#max || this.#ignored(path)) return
    if (path !== undefined) {
      for (const n of this.#declared.normalize) {
        if (matchesPattern(n.pattern, path)) {
          a = normalized(a, n.rule)
          b = normalized(b, n.rule)
        }
      }
    }
    if (a === b) return
    const ta = typeOf(a)
    if (ta !== typeOf(b) || (ta !== 'array' && ta !== 'object')) {
      this.#add(field)
      return
    }
    if (depth >= MAX_DEPTH) {
      if (!sameCanonical(a, b)) this.#add(field)
      return
    }
    if (ta === 'array') {
      const xa = a as unknown[]
      const xb = b as unknown[]
      const n = Math.max(xa.length, xb.length)
      const f = field + '/*'
      for (let i = 0; i < n; i++) {
        const p = path === undefined ? undefined : [...path, String(i)]
        if (i >= xa.length || i >= xb.length) {
          if (!this.#ignored(p)) this.#add(f)
        } else this.walk(xa[i], xb[i], p, f, depth + 1)
      }
      return
    }
    const oa = a as Record<string, unknown>
    const ob = b as Record<string, unknown>
    for (const k of Object.keys(oa)) {
      const p = path === undefined ? undefined : [...path, k]
      if (!Object.hasOwn(ob, k)) {
        if (!this.#ignored(p)) this.#add(field + '/' + segment(k))
      } else this.walk(oa[k], ob[k], p, field + '/' + segment(k), depth + 1)
    }
    for (const k of Object.keys(ob)) {
      if (!Object.hasOwn(oa, k) && !this.#ignored(path === undefined ? undefined : [...path, k])) this.#add(field + '/' + segment(k))
    }
  }
}
