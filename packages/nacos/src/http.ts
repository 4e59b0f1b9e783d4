// One undici Agent for all servers; a request never carries credentials in its URL.
import { Agent } from 'undici'
import { NacosError, errorCodes } from './errors.ts'
import type { ServerAddress } from './options.ts'
import type { SignHint } from './sign.ts'

export type Params = Record<string, string | number | boolean | undefined>

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  path: string
  query?: Params
  /** Sent as an application/x-www-form-urlencoded body. */
  form?: Params
  headers?: Record<string, string>
  timeoutMs?: number
  /** Aborts this request only (e.g. to restart a long poll); surfaces as an AbortError. */
  signal?: AbortSignal
  /** What an accessKey/secretKey signature covers, when the client has keys. */
  sign?: SignHint
}

export interface RawResponse {
  status: number
  body: string
  headers: Record<string, string | string[] | undefined>
}

/** Sends requests to one server; what transports are given. */
export interface ServerRequester {
  readonly server: ServerAddress
  request(spec: RequestSpec): Promise<RawResponse>
  /** The login token for this server (logging in when needed); undefined without credentials. */
  token?: () => Promise<string | undefined>
  /** Forget the token (the server refused it): the next `token()` logs in again. */
  dropToken?: () => void
}

/** Server identity the recognises as an SDK with a version: needed for UDP push on v1. */
export const USER_AGENT = 'Nacos-Java-Client:v2.6.3'

export function encodeParams (params: Params | undefined): string {
  const out = new URLSearchParams()
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined) out.append(k, String(v))
  return out.toString()
}

/** Marks failures that make the caller try the next server (connection errors, timeouts, 5xx). */
export function isRetryable (err: unknown): boolean {
  return err instanceof NacosError && err.code === errorCodes.UNREACHABLE
}

export class HttpClient {
  readonly #agent: Agent
  readonly #timeoutMs: number
  readonly #closing: AbortSignal

  constructor (timeoutMs: number, closing: AbortSignal) {
    this.#timeoutMs = timeoutMs
    this.#closing = closing
    this.#agent = new Agent({ keepAliveTimeout: 10_000, connections: 16, connect: { timeout: timeoutMs } })
  }

  async send (server: ServerAddress, spec: RequestSpec, extraHeaders: Record<string, string> = {}): Promise<RawResponse> {
    try {
      return await this.#send(server, spec, extraHeaders)
    } catch (err) {
      // A kept-alive socket the server closed (e.g. it restarted) fails before any answer: dial again once.
      // Every Nacos call we make is safe to repeat.
      const code = ((err as NacosError).cause as { code?: string } | undefined)?.code
      if (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET') throw err
      return this.#send(server, spec, extraHeaders)
    }
  }

  async #send (server: ServerAddress, spec: RequestSpec, extraHeaders: Record<string, string>): Promise<RawResponse> {
    if (this.#closing.aborted) throw closedError()
    const query = encodeParams(spec.query)
    const path = query === '' ? spec.path : `${spec.path}?${query}`
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, 'client-version': USER_AGENT, ...spec.headers, ...extraHeaders }
    let body: string | undefined
    if (spec.form !== undefined) {
      body = encodeParams(spec.form)
      headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8'
    }
    const timeout = AbortSignal.timeout(spec.timeoutMs ?? this.#timeoutMs)
    const signals = [this.#closing, timeout, ...(spec.signal === undefined ? [] : [spec.signal])]
    try {
      const res = await this.#agent.request({
        origin: server.origin,
        path,
        method: spec.method,
        headers,
        body,
        signal: AbortSignal.any(signals)
      })
      const text = await res.body.text()
      if (res.statusCode >= 500) {
        throw new NacosError(errorCodes.UNREACHABLE, `${server.origin} answered ${res.statusCode} to ${spec.method} ${spec.path}: ${clip(text)}`, {
          statusCode: res.statusCode
        })
      }
      return { status: res.statusCode, body: text, headers: res.headers }
    } catch (err) {
      if (err instanceof NacosError) throw err
      if (this.#closing.aborted) throw closedError()
      if (spec.signal?.aborted === true) throw spec.signal.reason ?? new DOMException('aborted', 'AbortError')
      const what = timeout.aborted ? 'timed out' : 'failed'
      throw new NacosError(errorCodes.UNREACHABLE, `${spec.method} ${server.origin}${spec.path} ${what}: ${(err as Error).message}`, { cause: err })
    }
  }

  async close (): Promise<void> {
    await this.#agent.destroy()
  }
}

export function closedError (): NacosError {
  return new NacosError(errorCodes.CLOSED, 'the Nacos client is closed')
}

export function clip (text: string): string {
  const t = text.trim()
  return t.length > 200 ? `${t.slice(0, 200)}...` : t
}
