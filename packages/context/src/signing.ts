import { createHmac, timingSafeEqual } from 'node:crypto'
import { parseTag } from './codec.ts'
import { ContextError, errorCodes } from './errors.ts'

/** An HMAC key. The first key of a list signs; every key in the list verifies (rotation). */
export interface SigningKey {
  id: string
  secret: string
}

const KEY_ID = /^[A-Za-z0-9._-]{1,32}$/
export const MIN_SECRET_LENGTH = 16
const MAX_TOKEN_LENGTH = 256
const MAX_TTL_SECONDS = 366 * 24 * 3600

function mac (secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest()
}

/**
 * A signed tag a tester can be handed by link or cookie: `<lane>~<expiry>~<keyId>~<mac>`,
 * expiry in Unix seconds, mac = base64url HMAC-SHA256 over the first three fields. Every
 * character is URL- and cookie-safe.
 *
 * @param ttlSeconds lifetime in seconds: an integer, at most 366 days
 * @param key `{ id, secret }`, the id 1-32 characters of `[A-Za-z0-9._-]`, the secret at least 16 characters
 * @param now the clock, in milliseconds since the epoch @default Date.now()
 * @throws {ContextError} `FLOWTAG_CONTEXT_SIGNING` for an invalid lane, ttl or key
 */
export function signTag (lane: string, ttlSeconds: number, key: SigningKey, now: number = Date.now()): string {
  if (parseTag(lane) === undefined) throw new ContextError(errorCodes.SIGNING, 'signTag: lane must be 1-64 characters of [A-Za-z0-9._-]')
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_TTL_SECONDS) {
    throw new ContextError(errorCodes.SIGNING, `signTag: ttlSeconds must be an integer in 1..${MAX_TTL_SECONDS}`)
  }
  if (typeof key !== 'object' || key === null || typeof key.id !== 'string' || !KEY_ID.test(key.id)) {
    throw new ContextError(errorCodes.SIGNING, 'signTag: key.id must be 1-32 characters of [A-Za-z0-9._-]')
  }
  if (typeof key.secret !== 'string' || key.secret.length < MIN_SECRET_LENGTH) {
    throw new ContextError(errorCodes.SIGNING, `signTag: key.secret must be a string of at least ${MIN_SECRET_LENGTH} characters`)
  }
  const payload = `${lane}~${Math.floor(now / 1000) + ttlSeconds}~${key.id}`
  return `${payload}~${mac(key.secret, payload).toString('base64url')}`
}

/** Why a signed tag was refused (for counters and debug logs; never the token itself). */
export type SignedTagRefusal = 'malformed' | 'unknown-key' | 'bad-signature' | 'expired'

export type SignedTagResult = { lane: string, keyId: string } | { refused: SignedTagRefusal }

/**
 * Verify a signed tag against the keys (secret by key id). Constant-time MAC comparison. Never
 * throws: returns `{ lane, keyId }` or `{ refused: 'malformed' | 'unknown-key' | 'bad-signature' | 'expired' }`.
 *
 * @param now the clock, in milliseconds since the epoch @default Date.now()
 */
export function verifySignedTag (token: unknown, keys: ReadonlyMap<string, string>, now: number = Date.now()): SignedTagResult {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return { refused: 'malformed' }
  const parts = token.split('~')
  if (parts.length !== 4) return { refused: 'malformed' }
  const [lane, exp, keyId, sig] = parts as [string, string, string, string]
  if (parseTag(lane) === undefined || !/^[0-9]{1,12}$/.test(exp) || !KEY_ID.test(keyId) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) return { refused: 'malformed' }
  const secret = keys.get(keyId)
  if (secret === undefined) return { refused: 'unknown-key' }
  const expected = mac(secret, `${lane}~${exp}~${keyId}`)
  const given = Buffer.from(sig, 'base64url')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { refused: 'bad-signature' }
  if (Number(exp) * 1000 <= now) return { refused: 'expired' }
  return { lane, keyId }
}
