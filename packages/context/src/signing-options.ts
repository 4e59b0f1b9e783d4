// The one signing option shape every transport takes (`signing`): the keys and a token lifetime.
// The preset's `signing`, the HTTP dispatcher's and the gRPC client's `signing`, a message
// producer's `signing`, and `trust.signed` (which reads only the keys) all parse it with this schema.
import { z } from 'zod'
import { MIN_SECRET_LENGTH, signTag, type SigningKey } from './signing.ts'

/** A signing key: the id 1-32 characters of `[A-Za-z0-9._-]`, the secret at least 16 characters. */
export const signingKeySchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,32}$/, 'must be 1-32 characters of [A-Za-z0-9._-]'),
  secret: z.string().min(MIN_SECRET_LENGTH, `must be at least ${MIN_SECRET_LENGTH} characters`)
})

/**
 * `{ keys, ttlSeconds }`: the first key signs every outgoing tag, every key verifies incoming ones
 * (rotate by prepending a key). `ttlSeconds` is a signed tag's lifetime, an integer in 10..86400,
 * default 300; a tag is re-signed after half of it.
 */
export const signingOptionsSchema = z.strictObject({
  /** The first key signs; every key verifies (rotate by prepending). */
  keys: z.array(signingKeySchema).min(1),
  /** Lifetime of a signed tag, in seconds; a tag is re-signed after half of it. @default 300 */
  ttlSeconds: z.int().min(10).max(86_400).default(300)
})

/** The `signing` option of every transport (see {@link signingOptionsSchema}). */
export type SigningOptions = z.input<typeof signingOptionsSchema>

/**
 * The signer of `signing`: `(lane) => signed tag`, one HMAC per lane and half-lifetime (tokens are
 * cached per lane, at most 256 lanes), signed with the first key.
 * @throws {ContextError} `FLOWTAG_CONTEXT_SIGNING` (on the first call) for an invalid lane
 */
export function laneSigner (signing: { keys: readonly SigningKey[], ttlSeconds?: number }): (lane: string) => string {
  const key = signing.keys[0]!
  const ttlSeconds = signing.ttlSeconds ?? 300
  const tokens = new Map<string, { token: string, renewAt: number }>()
  return (lane) => {
    const now = Date.now()
    const hit = tokens.get(lane)
    if (hit !== undefined && now < hit.renewAt) return hit.token
    if (tokens.size > 256) tokens.clear()
    const token = signTag(lane, ttlSeconds, key, now)
    tokens.set(lane, { token, renewAt: now + (ttlSeconds * 1000) / 2 })
    return token
  }
}
