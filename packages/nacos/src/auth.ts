// Login and token refresh, per server: a token is fetched on first need, refreshed a tenth of
// its ttl before it runs out (as the Java client does), and dropped when a server refuses it.
// A refused login is not fatal by itself, as with the Java client: a Nacos with auth off refuses
// logins too (2.x: 412 "admin role user not exist"; 3.1: 500) yet serves every call, so the calls
// go on without a token and only a call the server refuses (403) reports the refused login.
import { loginRefused, NacosAuthError, NacosError, errorCodes } from './errors.ts'
import { clip, type HttpClient } from './http.ts'
import type { Logger } from './logger.ts'
import type { ServerAddress } from './options.ts'
import { httpError } from './transport.ts'

interface TokenState {
  token: string | undefined
  /** When to log in again (ms epoch). */
  refreshAt: number
  login: Promise<void> | undefined
  /** The last refused login, until a login succeeds. */
  refused: NacosAuthError | undefined
  /** No new login before this (ms epoch) after a refusal: calls go on without a token meanwhile. */
  retryAt: number
}

/** How long a refused login is kept before the next try (the Java client re-logs in every 5 s). */
const REFUSED_RETRY_MS = 5000

/**
 * How Nacos words a refused login inside its 500 answer: 2.x says `ErrCode:0, ErrMsg:user not
 * found!`; 3.1 says only `Handle API Compatibility failed` on the v1 login path (the reason is
 * in its server log), for a wrong password as for an unknown user (checked against a real 3.1.0).
 */
const REFUSED_LOGIN = /user not found!?|password is wrong|unknown user|Handle API Compatibility failed/i

export class Authenticator {
  readonly #http: HttpClient
  readonly #username: string
  readonly #password: string
  readonly #logger: Logger
  readonly #states = new Map<string, TokenState>()

  constructor (http: HttpClient, username: string, password: string, logger: Logger) {
    this.#http = http
    this.#username = username
    this.#password = password
    this.#logger = logger
  }

  /**
   * A valid token for `server`, logging in when there is none or it is about to expire; undefined
   * while the last login is refused (see `refusal`). Throws what a login that got no answer throws
   * (the server is down or failing).
   */
  async token (server: ServerAddress): Promise<string | undefined> {
    const state = this.#state(server)
    if (state.token === undefined || Date.now() >= state.refreshAt) {
      if (state.refused !== undefined && Date.now() < state.retryAt) return undefined
      state.login ??= this.#login(server, state).then(
        () => {
          state.refused = undefined
        },
        (err: unknown) => {
          if (!(err instanceof NacosAuthError)) throw err
          if (state.refused === undefined) this.#logger.warn({ server: server.origin, err }, 'nacos login refused; calling without a token')
          state.token = undefined
          state.refused = err
          state.retryAt = Date.now() + REFUSED_RETRY_MS
        }
      ).finally(() => {
        state.login = undefined
      })
      await state.login
    }
    return state.token
  }

  /** The last refused login at `server` (FLOWTAG_NACOS_AUTH, reason `refused`), while no login has succeeded since. */
  refusal (server: ServerAddress): NacosAuthError | undefined {
    return this.#states.get(server.origin)?.refused
  }

  /** The server refused the token: the next call logs in again. */
  drop (server: ServerAddress): void {
    this.#state(server).token = undefined
  }

  #state (server: ServerAddress): TokenState {
    let state = this.#states.get(server.origin)
    if (state === undefined) this.#states.set(server.origin, (state = { token: undefined, refreshAt: 0, login: undefined, refused: undefined, retryAt: 0 }))
    return state
  }

  /**
   * One login request. Nacos 2.x answers a refused login (unknown user or wrong password) with a
   * 500 whose message says `user not found!`, 3.1 with one that says `Handle API Compatibility
   * failed`: that is a refusal, not a failing server (which would send the pool to the next
   * server and into a probe loop, logging in every probe).
   */
  async #send (server: ServerAddress, path: string, form: Record<string, string>) {
    try {
      return await this.#http.send(server, { method: 'POST', path, form })
    } catch (err) {
      const e = err as NacosError
      if (e instanceof NacosError && e.statusCode === 500 && REFUSED_LOGIN.test(e.message)) {
        throw loginRefused(server.origin, this.#username, `HTTP 500 ${REFUSED_LOGIN.exec(e.message)?.[0] ?? ''}`.trim(), 500, err)
      }
      throw err
    }
  }

  async #login (server: ServerAddress, state: TokenState): Promise<void> {
    const form = { username: this.#username, password: this.#password }
    let res = await this.#send(server, '/nacos/v1/auth/login', form)
    if (res.status === 404 || res.status === 410) res = await this.#send(server, '/nacos/v3/auth/user/login', form)
    if (res.status !== 200) {
      throw loginRefused(server.origin, this.#username, `HTTP ${res.status} ${clip(res.body)}`.trim(), res.status, httpError(res, 'login'))
    }
    let body: { accessToken?: unknown; tokenTtl?: unknown; data?: { accessToken?: unknown; tokenTtl?: unknown } }
    try {
      body = JSON.parse(res.body)
    } catch {
      throw new NacosError(errorCodes.AUTH, `login at ${server.origin}: answer is not JSON`)
    }
    const src = typeof body.accessToken === 'string' ? body : (body.data ?? {})
    if (typeof src.accessToken !== 'string') throw new NacosError(errorCodes.AUTH, `login at ${server.origin}: no accessToken in the answer`)
    const ttl = Number(src.tokenTtl ?? 18_000)
    state.token = src.accessToken
    state.refreshAt = Date.now() + Math.max(1, ttl) * 900
    this.#logger.debug({ server: server.origin, tokenTtl: ttl }, 'nacos login ok')
  }
}
