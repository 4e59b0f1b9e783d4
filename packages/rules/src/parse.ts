import { describeBadOption } from '@flowtag/errors'
import type { z } from 'zod'
import { errorCodes, RulesError, type RuleIssue } from './errors.ts'
import { RuleSetSchema, type RuleSet } from './schema.ts'

/**
 * Largest document accepted (UTF-8 bytes), so a runaway config cannot exhaust memory: Nacos's own
 * config content limit (10 MiB, `nacos.config.max-content`; @flowtag/nacos reads that much over gRPC),
 * so any RuleSet Nacos stores is judged on its content, never refused for its size alone.
 */
export const MAX_DOCUMENT_BYTES = 10 * 1024 * 1024

function pathText (path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.')
}

/**
 * Turn zod issues into `{ path, message }` pairs (zod paths joined with dots). An unknown key is
 * one issue per key, at the key's own path (`services.order-service.stabel`, not the object
 * holding it), and comes first: a typo'd key is the cause of the "required" issue beside it. With
 * `schema` (the one that refused it) an unknown key's message names the key most likely meant
 * and the valid keys there, as bad options do.
 */
export function issuesOf (error: z.ZodError, schema?: unknown): RuleIssue[] {
  const unknown: RuleIssue[] = []
  const other: RuleIssue[] = []
  for (const i of error.issues) {
    if (i.code === 'unrecognized_keys') for (const key of i.keys) unknown.push({ path: pathText([...i.path, key]), message: unknownKey(i.path, key, schema) })
    else other.push({ path: pathText(i.path), message: i.message })
  }
  return [...unknown, ...other]
}

function unknownKey (path: readonly PropertyKey[], key: string, schema: unknown): string {
  if (schema === undefined) return 'unknown key'
  return describeBadOption('', { issues: [{ code: 'unrecognized_keys', keys: [key], path, message: '' }] }, { schema }).problem
}

function versionHint (value: unknown): string {
  const v = (value as { version?: unknown } | null)?.version
  return typeof v === 'number' || typeof v === 'string' ? ` (version ${String(v).slice(0, 32)})` : ''
}

/**
 * Parse and validate one raw RuleSet document (JSON text, at most 10 MiB).
 *
 * @param origin names the document in the error message @default 'document'
 * @throws {RulesError} `FLOWTAG_RULES_INVALID`, one error listing every bad path in `err.issues`
 */
export function parseRuleSet (text: string, origin = 'document'): RuleSet {
  if (typeof text !== 'string') throw new RulesError(errorCodes.INVALID, `${origin}: rule set rejected: expected a JSON string, got ${typeof text}`, { issues: [{ path: '(root)', message: 'not a string' }] })
  const bytes = text.length > MAX_DOCUMENT_BYTES / 3 ? Buffer.byteLength(text) : text.length
  if (bytes > MAX_DOCUMENT_BYTES) {
    throw new RulesError(errorCodes.INVALID, `${origin}: rule set rejected: ${bytes} bytes, larger than ${MAX_DOCUMENT_BYTES}`, { issues: [{ path: '(root)', message: 'document too large' }] })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    const message = (err as Error).message
    throw new RulesError(errorCodes.INVALID, `${origin}: rule set rejected: not JSON: ${message}`, { cause: err, issues: [{ path: '(root)', message: `not JSON: ${message}` }] })
  }
  return validateRuleSet(json, origin)
}

/**
 * Validate an already-parsed value against the RuleSet schema (defaults filled in).
 *
 * @param origin names the document in the error message @default 'document'
 * @throws {RulesError} `FLOWTAG_RULES_INVALID`, one error listing every bad path in `err.issues`
 */
export function validateRuleSet (value: unknown, origin = 'document'): RuleSet {
  const result = RuleSetSchema.safeParse(value)
  if (result.success) return result.data
  const issues = issuesOf(result.error, RuleSetSchema)
  const shown = issues.slice(0, 20).map((i) => `${i.path}: ${i.message}`).join('; ')
  const more = issues.length > 20 ? `; and ${issues.length - 20} more` : ''
  throw new RulesError(errorCodes.INVALID, `${origin}: rule set rejected${versionHint(value)}: ${shown}${more}`, { issues })
}
