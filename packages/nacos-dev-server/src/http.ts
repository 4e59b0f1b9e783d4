import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpAnswer } from './errors.ts'

/** One request as the handlers see it: Nacos reads query and form body alike, values trimmed. */
export interface Call {
  method: string
  path: string
  params: URLSearchParams
  headers: IncomingMessage['headers']
  remoteAddress: string
  /** Set by a handler that answers later (long poll): gives the socket to the handler. */
  res: ServerResponse
}

export type Handler = (call: Call) => Reply | Promise<Reply> | undefined | Promise<undefined>

export interface Reply {
  status?: number
  body: string | Buffer
  contentType?: string
  headers?: Record<string, string>
}

export const text = (body: string, status = 200): Reply => ({ status, body, contentType: 'text/plain;charset=UTF-8' })
export const json = (value: unknown, status = 200): Reply => ({
  status,
  body: JSON.stringify(value),
  contentType: 'application/json;charset=UTF-8'
})

/** Read the body up to a limit; 413 past it, so a client can't make the server buffer without bound. */
export async function readBody (req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw new HttpAnswer(413, 'Request Entity Too Large')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new HttpAnswer(413, 'Request Entity Too Large')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Query and form body merged; values kept as sent (config content keeps its white space). A form
 * body over `maxFormBytes` adds nothing, as Tomcat under Nacos's Spring Boot drops the parameters
 * of a form over its max-http-form-post-size (the handler then finds them missing).
 */
export function parseParams (url: URL, body: string, contentType: string | undefined, maxFormBytes = Infinity): URLSearchParams {
  const params = new URLSearchParams()
  const add = (source: URLSearchParams) => {
    for (const [k, v] of source) params.append(k, v)
  }
  add(url.searchParams)
  if (body.length > 0 && Buffer.byteLength(body) <= maxFormBytes && (contentType === undefined || contentType.includes('application/x-www-form-urlencoded'))) {
    add(new URLSearchParams(body))
  }
  return params
}

export function send (res: ServerResponse, reply: Reply): void {
  if (res.writableEnded || res.destroyed) return
  res.statusCode = reply.status ?? 200
  res.setHeader('content-type', reply.contentType ?? 'text/plain;charset=UTF-8')
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v)
  res.end(reply.body)
}

/** Nacos's WebUtils.optional: trimmed, and blank counts as absent. Content is read raw instead. */
export function optional (call: Call, name: string): string | undefined {
  const v = call.params.get(name)?.trim()
  return v === undefined || v === '' ? undefined : v
}

export function bool (value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback
  return value.toLowerCase() === 'true'
}
