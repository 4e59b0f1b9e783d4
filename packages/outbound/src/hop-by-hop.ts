// Hop-by-hop header fields (RFC 9110 §7.6.1): Connection and every field it names, Keep-Alive,
// Proxy-Connection, TE, Transfer-Encoding and Upgrade describe one connection, not the message.
// The dispatcher owns its connections to instances (undici frames bodies and keeps connections
// alive by itself), so such fields handed to it — often copied from an incoming request by a
// gateway — are not sent on, and those of an instance's answer are not handed back: a gateway
// that forwards an answer never passes an instance's keep-alive on to its own client.

type Value = string | string[]
type Headers = Record<string, Value | undefined>

/** How a request header is copied (see requestHop). */
export const KEEP = 0
export const DROP = 1
/** Connection: dropped, and the fields it names are dropped too. */
export const CONNECTION = 2
/** TE: sent on as `trailers` only, when the caller accepts trailers. */
export const TRAILERS = 3

/** Response fields dropped whatever their value (Connection's own names come on top). */
const RESPONSE_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade'])
const HOP_LENGTHS = new Set([...RESPONSE_HOP].map((n) => n.length))
const NONE: string[] = []

/**
 * The treatment of request header `lower` (a lower-cased name). `Expect: 100-continue` is dropped:
 * the server that received the request has answered it already (Node's answers 100 Continue
 * before the handler runs), and undici refuses an Expect header; any other expectation is kept,
 * for undici to refuse with its own error. `Upgrade` is dropped too: undici sends an upgrade
 * request's Upgrade and Connection from its `upgrade` option, and refuses the header.
 */
export function requestHop (lower: string, value: Value): number {
  switch (lower) {
    case 'connection':
      return CONNECTION
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
      return DROP
    case 'te':
      return tokens(value).includes('trailers') ? TRAILERS : DROP
    case 'expect':
      return tokens(value).every((t) => t === '100-continue') ? DROP : KEEP
    default:
      return KEEP
  }
}

/** The lower-cased tokens of a comma-separated list (a Connection or TE value), parameters cut. */
export function tokens (value: Value | undefined): string[] {
  if (value === undefined) return []
  const out: string[] = []
  for (const part of (typeof value === 'string' ? value : value.join(',')).split(',')) {
    const token = part.split(';', 1)[0]!.trim().toLowerCase()
    if (token !== '') out.push(token)
  }
  return out
}

/**
 * Deletes from `headers` (names in any case) the fields a Connection header named, but TE
 * (requestHop decides it). Returns true when one of them was Host.
 */
export function dropNamed (headers: Headers, names: readonly string[]): boolean {
  let host = false
  for (const name in headers) {
    const lower = name.toLowerCase()
    if (lower !== 'te' && names.includes(lower)) {
      delete headers[name]
      if (lower === 'host') host = true
    }
  }
  return host
}

/**
 * An answer's headers without hop-by-hop fields: `undefined` when there are none (six property
 * reads), else new `headers` (lower-case names, as undici gives them) and `raw` (undici's flat
 * [name, value, …] Buffers) without them; `raw` is null when it was not an array.
 */
export function stripResponse (headers: Headers, raw: unknown): { headers: Headers, raw: Buffer[] | null } | undefined {
  const connection = headers.connection
  if (connection === undefined && headers['keep-alive'] === undefined && headers['transfer-encoding'] === undefined &&
    headers.upgrade === undefined && headers['proxy-connection'] === undefined && headers.te === undefined) return undefined
  // Nearly every answer says just keep-alive or close: nothing named to look for.
  const named = connection === undefined || connection === 'keep-alive' || connection === 'close' ? NONE : tokens(connection)
  const out: Headers = {}
  for (const name in headers) if (!RESPONSE_HOP.has(name) && (named === NONE || !named.includes(name))) out[name] = headers[name]
  if (!Array.isArray(raw)) return { headers: out, raw: null }
  const kept: Buffer[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const buf = raw[i] as Buffer
    // Only names as long as a hop-by-hop one (or a named one) are decoded.
    if ((HOP_LENGTHS.has(buf.length) || named !== NONE) && isHop(buf.toString('latin1').toLowerCase(), named)) continue
    kept.push(buf, raw[i + 1] as Buffer)
  }
  return { headers: out, raw: kept }
}

function isHop (lower: string, named: string[]): boolean {
  return RESPONSE_HOP.has(lower) || named.includes(lower)
}
