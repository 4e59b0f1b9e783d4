/**
 * IPv4 / IPv6 addresses and CIDR blocks as plain 32-bit words, so matching is a few integer
 * compares. Every address is held as four words (IPv4 as the IPv4-mapped IPv6 form
 * ::ffff:a.b.c.d), so a v4 block also matches a v4 client seen through a dual-stack socket.
 */
import { RulesError, errorCodes } from './errors.ts'

/** A pre-parsed CIDR block: four address words and four mask words. */
export interface Cidr {
  readonly text: string
  readonly words: Uint32Array
  readonly mask: Uint32Array
}

function parseV4Into (s: string, out: Uint32Array, at: number): boolean {
  let value = 0
  let part = 0
  let digits = 0
  let parts = 0
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46 // a virtual '.' ends the last part
    if (c === 46) {
      if (digits === 0 || part > 255) return false
      value = (value * 256) + part
      parts++
      part = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return false // no leading zeros (octal ambiguity)
      part = part * 10 + (c - 48)
      if (++digits > 3) return false
    } else {
      return false
    }
  }
  if (parts !== 4) return false
  out[at] = value >>> 0
  return true
}

function hexValue (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/** Parse an IPv6 address (with optional embedded IPv4 tail) into 4 words. No allocation on success path except for the tail. */
function parseV6Into (s: string, out: Uint32Array): boolean {
  const groups = scratchGroups
  let n = 0
  let gap = -1
  let i = 0
  const len = s.length
  if (len < 2) return false
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false
    gap = 0
    i = 2
    if (i === len) { groups.fill(0); return packGroups(groups, 0, 0, out) }
  }
  while (i < len) {
    // an embedded IPv4 tail takes the last two groups
    let j = i
    let value = 0
    let digits = 0
    while (j < len) {
      const h = hexValue(s.charCodeAt(j))
      if (h < 0) break
      value = value * 16 + h
      if (++digits > 4) return false
      j++
    }
    if (j < len && s.charCodeAt(j) === 46) {
      if (n > 6) return false
      if (!parseV4Into(s.slice(i), scratchV4, 0)) return false
      const v4 = scratchV4[0]!
      groups[n++] = v4 >>> 16
      groups[n++] = v4 & 0xffff
      i = len
      break
    }
    if (digits === 0) return false
    if (n >= 8) return false
    groups[n++] = value
    if (j === len) { i = j; break }
    if (s.charCodeAt(j) !== 58) return false
    j++
    if (j < len && s.charCodeAt(j) === 58) {
      if (gap >= 0) return false
      gap = n
      j++
      if (j === len) { i = j; break }
    } else if (j === len) {
      return false // trailing single colon
    }
    i = j
  }
  if (gap < 0 && n !== 8) return false
  if (gap >= 0 && n > 7) return false
  return packGroups(groups, n, gap, out)
}

function packGroups (groups: Uint16Array, n: number, gap: number, out: Uint32Array): boolean {
  const full = scratchFull
  if (gap < 0) {
    for (let k = 0; k < 8; k++) full[k] = groups[k]!
  } else {
    const zeros = 8 - n
    let k = 0
    for (let g = 0; g < gap; g++) full[k++] = groups[g]!
    for (let z = 0; z < zeros; z++) full[k++] = 0
    for (let g = gap; g < n; g++) full[k++] = groups[g]!
  }
  for (let w = 0; w < 4; w++) out[w] = ((full[w * 2]! << 16) | full[w * 2 + 1]!) >>> 0
  return true
}

const scratchGroups = new Uint16Array(8)
const scratchFull = new Uint16Array(8)
const scratchV4 = new Uint32Array(1)

/**
 * Parse an address into `out` (4 words). Returns 4 or 6 (the family written), or 0 when the
 * text is not an address. IPv4 is written as ::ffff:a.b.c.d. A zone (`%eth0`) is ignored.
 */
export function parseIpInto (text: string, out: Uint32Array): 0 | 4 | 6 {
  if (text.indexOf(':') === -1) {
    if (!parseV4Into(text, out, 3)) return 0
    out[0] = 0; out[1] = 0; out[2] = 0xffff
    return 4
  }
  const zone = text.indexOf('%')
  return parseV6Into(zone === -1 ? text : text.slice(0, zone), out) ? 6 : 0
}

/** Parse `a.b.c.d/n`, `x::y/n`, or a bare address (a single-host block). Undefined when invalid. */
export function parseCidr (text: string): Cidr | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return undefined
  const slash = text.indexOf('/')
  const addr = slash === -1 ? text : text.slice(0, slash)
  if (addr.indexOf('%') !== -1) return undefined
  const words = new Uint32Array(4)
  const family = parseIpInto(addr, words)
  if (family === 0) return undefined
  const max = family === 4 ? 32 : 128
  let bits = max
  if (slash !== -1) {
    const p = text.slice(slash + 1)
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined
    bits = Number(p)
    if (bits > max) return undefined
  }
  if (family === 4) bits += 96 // the v4-mapped prefix ::ffff:0:0/96
  const mask = new Uint32Array(4)
  for (let w = 0; w < 4; w++) {
    const b = Math.max(0, Math.min(32, bits - w * 32))
    mask[w] = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0
    words[w] = (words[w]! & mask[w]!) >>> 0
  }
  return { text, words, mask }
}

/** True when the 4-word address lies in the block. */
export function cidrContains (cidr: Cidr, addr: Uint32Array): boolean {
  const { words, mask } = cidr
  return ((addr[0]! & mask[0]!) >>> 0) === words[0] &&
    ((addr[1]! & mask[1]!) >>> 0) === words[1] &&
    ((addr[2]! & mask[2]!) >>> 0) === words[2] &&
    ((addr[3]! & mask[3]!) >>> 0) === words[3]
}

/** Compile CIDR texts once; throws a TypeError naming the first bad one. */
export function compileCidrs (list: readonly string[]): Cidr[] {
  return list.map((text, i) => {
    const c = parseCidr(text)
    if (c === undefined) {
      // The index as data (`path`), so a caller can name the field as its user wrote it.
      const problem = `not a valid IPv4/IPv6 CIDR: ${JSON.stringify(text)}`
      throw new RulesError(errorCodes.BAD_OPTION, `cidrs[${i}]: ${problem}`, { field: `cidrs.${i}`, path: ['cidrs', i], problem })
    }
    return c
  })
}

const scratchAddr = new Uint32Array(4)

/** Index of the first block containing `ip`, or -1 (also for unparsable input). */
export function matchIp (cidrs: readonly Cidr[], ip: string | undefined): number {
  if (typeof ip !== 'string' || ip.length === 0 || ip.length > 64) return -1
  if (parseIpInto(ip, scratchAddr) === 0) return -1
  for (let i = 0; i < cidrs.length; i++) if (cidrContains(cidrs[i]!, scratchAddr)) return i
  return -1
}
