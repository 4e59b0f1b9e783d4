import type { ServerResponse } from 'node:http'
import type { ConfigStore } from './config-store.ts'
import { configKey, configTenant } from './config-store.ts'
import { HttpAnswer } from './errors.ts'
import { send } from './http.ts'

interface Listened {
  key: string
  /** How the client named it: dataId \u0002 group [\u0002 tenant], echoed back in the answer. */
  echo: string
  md5: string
}

interface Poll {
  keys: Listened[]
  res: ServerResponse
  timer: NodeJS.Timeout
}

const MAX_KEYS = 10_000

/** Parse `Listening-Configs`: records ended by \u0001, fields split by \u0002. */
export function parseListening (raw: string | null, compat = '3.1'): Listened[] {
  if (raw === null || raw.trim() === '') throw new HttpAnswer(400, 'caused: invalid probeModify;')
  // Nacos URL-decodes once more after form decoding; the key characters make that a no-op but for '%'.
  let text = raw
  if (text.includes('%')) {
    try {
      text = decodeURIComponent(text)
    } catch {
      throw new HttpAnswer(400, 'caused: invalid probeModify;')
    }
  }
  const out: Listened[] = []
  for (const record of text.split('\u0001')) {
    if (record === '') continue
    const f = record.split('\u0002')
    if (f.length < 3 || f.length > 4 || f[0] === '' || f[1] === '') throw new HttpAnswer(400, 'caused: invalid probeModify;')
    const [dataId, group, hash, tenant = ''] = f as [string, string, string, string?]
    out.push({
      key: configKey(configTenant(tenant, compat), group, dataId),
      echo: tenant === '' ? `${dataId}\u0002${group}` : `${dataId}\u0002${group}\u0002${tenant}`,
      md5: hash
    })
    if (out.length > MAX_KEYS) throw new HttpAnswer(400, 'caused: invalid probeModify;')
  }
  if (out.length === 0) throw new HttpAnswer(400, 'caused: invalid probeModify;')
  return out
}

/** The answer body: the changed keys, encoded as Java's URLEncoder would, one line. */
function encode (changed: Listened[]): string {
  if (changed.length === 0) return ''
  const raw = changed.map((k) => `${k.echo}\u0001`).join('')
  return `${encodeURIComponent(raw).replace(/%20/g, '+')}\n`
}

/**
 * Config long polling: answer at once when a listened md5 already differs, else hold the request
 * until a listened key changes or the hold time passes.
 */
export class LongPolls {
  readonly #polls = new Set<Poll>()
  readonly #store: ConfigStore

  constructor (store: ConfigStore) {
    this.#store = store
    store.on('change', (key) => this.#changed(key))
  }

  handle (keys: Listened[], res: ServerResponse, holdMs: number | undefined): void {
    const changed = keys.filter((k) => this.#store.md5Of(k.key) !== k.md5)
    if (changed.length > 0 || holdMs === undefined) {
      send(res, { body: encode(changed) })
      return
    }
    const poll: Poll = { keys, res, timer: setTimeout(() => this.#finish(poll, []), holdMs) }
    this.#polls.add(poll)
    res.on('close', () => {
      clearTimeout(poll.timer)
      this.#polls.delete(poll)
    })
  }

  count (): number {
    return this.#polls.size
  }

  close (): void {
    for (const poll of this.#polls) this.#finish(poll, [])
  }

  #changed (key: string): void {
    for (const poll of this.#polls) {
      const hit = poll.keys.filter((k) => k.key === key)
      if (hit.length > 0) this.#finish(poll, hit)
    }
  }

  #finish (poll: Poll, changed: Listened[]): void {
    clearTimeout(poll.timer)
    this.#polls.delete(poll)
    send(poll.res, { body: encode(changed) })
  }
}
