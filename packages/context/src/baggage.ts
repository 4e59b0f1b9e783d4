/** W3C baggage (https://www.w3.org/TR/baggage/) limits: a propagator may drop beyond these. */
export const MAX_BAGGAGE_LENGTH = 8192
export const MAX_BAGGAGE_ENTRIES = 180

const KEY = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

export interface BaggageEntry {
  key: string
  value: string
  /** The member as it appeared (value and properties untouched), to pass on verbatim. */
  raw: string
}

function decode (s: string): string | undefined {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

/** Parse one or more baggage header values. Malformed members are skipped; limits applied. */
export function parseBaggage (header: string | string[] | undefined): BaggageEntry[] {
  if (header === undefined) return []
  const text = Array.isArray(header) ? header.join(',') : header
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_BAGGAGE_LENGTH) return []
  const out: BaggageEntry[] = []
  for (const member of text.split(',')) {
    if (out.length >= MAX_BAGGAGE_ENTRIES) break
    const raw = member.trim()
    const eq = raw.indexOf('=')
    if (eq <= 0) continue
    const key = raw.slice(0, eq).trim()
    const semi = raw.indexOf(';', eq)
    const value = decode(raw.slice(eq + 1, semi === -1 ? raw.length : semi).trim())
    if (!KEY.test(key) || value === undefined) continue
    out.push({ key, value, raw })
  }
  return out
}

/** Percent-encode a baggage value (everything outside the W3C baggage-octet set). */
export function encodeBaggageValue (value: string): string {
  return encodeURIComponent(value)
}

export function isBaggageKey (key: string): boolean {
  return KEY.test(key)
}
