// One message format for a bad option in every package:
//   <package>: invalid option "<field.path>": <what is wrong>
// and the same facts as data on the error (`field`, `path`, `problem`), so nothing downstream
// has to parse them back out of the message.

/** One zod (v3 or v4) issue, as far as the message needs it; a union's branches are in `errors`. */
export interface Issue {
  path: ReadonlyArray<PropertyKey>
  message: string
  code?: string
  keys?: ReadonlyArray<string>
  errors?: ReadonlyArray<ReadonlyArray<Issue>>
}

/** The structural part of a zod error that the message needs. */
export interface IssueList {
  issues: ReadonlyArray<Issue>
}

/** A bad option, as message and data: what an error class takes as its options. */
export interface BadOption {
  /** `<pkg>: invalid option "<field>": <problem>`. */
  message: string
  /** The dotted path of the bad field (`registration.drainMs`); `options` for the whole object. */
  field: string
  /** The same path as its segments (a record key with a dot in it stays one segment). */
  path: Array<string | number>
  /** What is wrong, without the field: `expected number, received string`. */
  problem: string
  /** For an unknown key: the keys the object takes, when the schema was given. */
  validKeys?: string[]
  /** For an unknown key: the valid key closest to it (a likely typo), when there is one. */
  suggestion?: string
}

export interface DescribeOptions {
  /** Put in front of the path (`nacos` for the options a plugin hands to a client). */
  prefix?: string
  /** The zod schema that refused the input: lets an unknown key list the valid ones. */
  schema?: unknown
}

/** `"<field>": <problem>` as the shared wording, for errors built by hand. */
export function badOptionMessage (pkg: string, field: string, problem: string): string {
  return `${pkg}: invalid option "${field}": ${problem}`
}

/** A bad option found by hand, as message and data (see {@link describeBadOption}). */
export function badOption (pkg: string, field: string, problem: string, path?: Array<string | number>): BadOption {
  return { message: badOptionMessage(pkg, field, problem), field, path: path ?? field.split('.'), problem }
}

/**
 * The bad option a zod error reports, as message and data. The issue reported is the first
 * unknown key, else the first issue; inside a union (`false | { ... }`) it is the deepest issue of any branch, so the field is the
 * one that is wrong (`registration.drainMs`), not the union (`registration`). An unknown key is
 * named itself, with the closest valid key and the valid keys when `schema` is given.
 */
export function describeBadOption (pkg: string, error: IssueList, options: DescribeOptions = {}): BadOption {
  // An unknown key goes first: it is most often a typo, and the "missing" issue it causes (the
  // key meant) only repeats it.
  const found = error.issues.map((i) => deepest(i, []))
  const { issue, path } = found.find((f) => f.issue?.code === 'unrecognized_keys') ?? found[0] ?? { issue: undefined, path: [] }
  const segments: Array<string | number> = path.map((p) => (typeof p === 'number' ? p : String(p)))
  let problem = issue === undefined ? 'invalid' : plain(issue.message)
  let validKeys: string[] | undefined
  let suggestion: string | undefined
  if (issue?.code === 'unrecognized_keys' && issue.keys?.[0] !== undefined) {
    const key = issue.keys[0]
    const keys = options.schema === undefined ? undefined : keysAt(options.schema, segments)
    segments.push(key)
    problem = 'unknown key'
    if (keys !== undefined && keys.length > 0) {
      validKeys = keys
      suggestion = closest(key, keys)
      problem += `${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}; valid keys: ${keys.join(', ')}`
    }
  }
  const full = [...(options.prefix === undefined || options.prefix === '' ? [] : options.prefix.split('.')), ...segments]
  const field = full.length === 0 ? 'options' : full.join('.')
  const out: BadOption = { message: badOptionMessage(pkg, field, problem), field, path: full, problem }
  if (validKeys !== undefined) out.validKeys = validKeys
  if (suggestion !== undefined) out.suggestion = suggestion
  return out
}

/** The dotted field path of a zod error (see {@link describeBadOption}); `prefix` goes in front. */
export function fieldOf (error: IssueList, prefix?: string): string {
  return describeBadOption('', error, prefix === undefined ? {} : { prefix }).field
}

/**
 * The message for invalid options from a zod error: names the bad field and what is wrong with
 * it (see {@link describeBadOption}). Each package wraps it in its own error class and
 * `BAD_OPTION` code; prefer `describeBadOption`, whose data the error can carry.
 */
export function optionErrorMessage (pkg: string, error: IssueList, prefix?: string): string {
  return describeBadOption(pkg, error, prefix === undefined ? {} : { prefix }).message
}

/** The issue with the longest path, looking into union branches deeper than the union; the first one on a tie. */
function deepest (issue: Issue | undefined, base: ReadonlyArray<PropertyKey>): { issue: Issue | undefined, path: PropertyKey[] } {
  if (issue === undefined) return { issue, path: [...base] }
  const path = [...base, ...issue.path]
  let best: { issue: Issue | undefined, path: PropertyKey[] } = { issue, path }
  if (issue.code !== 'invalid_union' || issue.errors === undefined) return best
  // A branch is reported only when it goes deeper than the union: else the union's own message
  // (often written for people: "false, or a list of ...") says it better than either branch.
  let bestDepth = path.length
  for (const branch of issue.errors) {
    for (const inner of branch) {
      const found = deepest(inner, path)
      const unknownKey = found.issue?.code === 'unrecognized_keys'
      const depth = found.path.length + (unknownKey ? 1 : 0)
      // On a tie an unknown key wins (the key it was meant to be is then reported missing).
      if (depth > bestDepth || (depth === bestDepth && unknownKey && best.issue?.code !== 'unrecognized_keys')) { best = found; bestDepth = depth }
    }
  }
  return best
}

/** zod's messages open with "Invalid input: " before the useful part; keep the useful part. */
function plain (message: string): string {
  const m = /^Invalid input: (.+)$/s.exec(message)
  return m === null ? message : (m[1] as string)
}

interface SchemaDef {
  type?: string
  shape?: Record<string, unknown>
  innerType?: unknown
  in?: unknown
  options?: unknown[]
  valueType?: unknown
  element?: unknown
  left?: unknown
  right?: unknown
  getter?: () => unknown
}

const defOf = (schema: unknown): SchemaDef | undefined => (schema as { _zod?: { def?: SchemaDef } } | null)?._zod?.def

/** The keys of the object schema at `path` inside `schema` (zod 4), or undefined. */
function keysAt (schema: unknown, path: ReadonlyArray<string | number>): string[] | undefined {
  const found = new Set<string>()
  collect(schema, path, found, 0)
  return found.size === 0 ? undefined : [...found]
}

function collect (schema: unknown, path: ReadonlyArray<string | number>, into: Set<string>, depth: number): void {
  const def = defOf(schema)
  if (def === undefined || depth > 64) return
  switch (def.type) {
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'catch': case 'readonly': case 'nonoptional':
      return collect(def.innerType, path, into, depth + 1)
    case 'pipe':
      return collect(def.in, path, into, depth + 1)
    case 'lazy':
      return collect(def.getter?.(), path, into, depth + 1)
    case 'union':
      for (const o of def.options ?? []) collect(o, path, into, depth + 1)
      return
    case 'intersection':
      collect(def.left, path, into, depth + 1)
      collect(def.right, path, into, depth + 1)
      return
    case 'object':
      if (path.length === 0) {
        for (const k of Object.keys(def.shape ?? {})) into.add(k)
        return
      }
      return collect(def.shape?.[String(path[0])], path.slice(1), into, depth + 1)
    case 'record':
      if (path.length > 0) collect(def.valueType, path.slice(1), into, depth + 1)
      return
    case 'array':
      if (path.length > 0) collect(def.element, path.slice(1), into, depth + 1)
  }
}

/** The valid key a typo most likely meant: case-insensitive edit distance ≤ 1/3 of its length. */
function closest (key: string, keys: ReadonlyArray<string>): string | undefined {
  const k = key.toLowerCase()
  let best: string | undefined
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1
  for (const candidate of keys) {
    const d = distance(k, candidate.toLowerCase())
    if (d < bestDistance) { best = candidate; bestDistance = d }
  }
  return best
}

/** Levenshtein distance. */
function distance (a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length] as number
}
