import { randomBytes, timingSafeEqual } from 'node:crypto'
import { HttpAnswer } from './errors.ts'
import { json, type Call, type Reply } from './http.ts'
import type { ResolvedOptions } from './options.ts'

type AuthOptions = NonNullable<ResolvedOptions['auth']>

/** Nacos's default auth plugin, one user: login gives a token with a TTL; every guarded call needs it. */
export class Auth {
  readonly #opts: AuthOptions
  readonly #tokens = new Map<string, number>()

  constructor (opts: AuthOptions) {
    this.#opts = opts
  }

  login (call: Call): Reply {
    const username = call.params.get('username') ?? ''
    const password = call.params.get('password') ?? ''
    if (!this.#matches(username, password)) throw forbidden(call, 'user not found!')
    this.#sweep()
    const token = randomBytes(32).toString('base64url')
    this.#tokens.set(token, Date.now() + this.#opts.tokenTtlSeconds * 1000)
    const reply = json({ accessToken: token, tokenTtl: this.#opts.tokenTtlSeconds, globalAdmin: true, username })
    reply.headers = { authorization: `Bearer ${token}` }
    return reply
  }

  /** Throws Nacos's 403 unless the call carries a live token (or the user's credentials). */
  check (call: Call): void {
    const token = tokenOf(call)
    if (token === undefined) {
      const username = call.params.get('username')
      const password = call.params.get('password')
      if (username !== null && password !== null && this.#matches(username, password)) return
      throw forbidden(call, 'user not found!')
    }
    const expires = this.#tokens.get(token)
    if (expires === undefined) throw forbidden(call, 'token invalid!')
    if (expires <= Date.now()) {
      this.#tokens.delete(token)
      throw forbidden(call, 'token expired!')
    }
  }

  /** For gRPC calls (token in the metadata headers): undefined when the token is live, else Nacos's refusal text. */
  refusal (token: string | undefined): string | undefined {
    if (token === undefined || token === '') return 'user not found!'
    const expires = this.#tokens.get(token)
    if (expires === undefined) return 'token invalid!'
    if (expires <= Date.now()) {
      this.#tokens.delete(token)
      return 'token expired!'
    }
    return undefined
  }

  #matches (username: string, password: string): boolean {
    return username === this.#opts.username && safeEqual(password, this.#opts.password)
  }

  #sweep (): void {
    const now = Date.now()
    for (const [t, exp] of this.#tokens) if (exp <= now) this.#tokens.delete(t)
  }
}

function tokenOf (call: Call): string | undefined {
  const authz = call.headers.authorization
  if (authz !== undefined && authz.startsWith('Bearer ')) return authz.slice(7).trim()
  const header = call.headers.accesstoken
  if (typeof header === 'string' && header !== '') return header
  return call.params.get('accessToken') ?? undefined
}

function safeEqual (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Nacos's filters answer through sendError: Spring Boot's JSON error page. */
function forbidden (call: Call, message: string): HttpAnswer {
  const body = JSON.stringify({ timestamp: new Date().toISOString(), status: 403, error: 'Forbidden', message, path: call.path })
  return new HttpAnswer(403, body, 'application/json;charset=UTF-8')
}
