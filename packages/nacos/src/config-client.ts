// Config: get / publish / remove, and listen over ONE batched long poll for every listened key
// (v1), or md5 polling where the server has no long poll (v3). Last content is kept on disk.
// Failed polls back off; the first answer after an outage ends the back-off at once.
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import type { ClientContext } from './context.ts'
import { NacosError, errorCodes } from './errors.ts'
import { parseArgument } from './options.ts'
import { md5, type ConfigKey } from './transport.ts'

export type ConfigListener = (content: string | undefined) => void

interface Entry {
  dataId: string
  group: string
  /** Whether `content` reflects the server (or a snapshot of it). */
  known: boolean
  content: string | undefined
  /** md5 of the content held; empty when none (what the long poll protocol expects). */
  md5: string
  listeners: Set<ConfigListener>
  /**
   * The last fetch failed by itself (an answer too large, a refusal) while the server is up: the
   * key leaves the listen loop until `retryAt` (backing off), so it neither spins nor holds up
   * the other keys; the error is logged once per distinct message.
   */
  failure: { message: string; count: number; retryAt: number; timer: NodeJS.Timeout } | undefined
}

/** Errors that say the servers are gone (or the client is): the whole loop backs off. */
const loopWide = (err: unknown): boolean => { const code = (err as NacosError).code; return code === errorCodes.UNREACHABLE || code === errorCodes.CLOSED }

const keyPart = z.string().min(1).max(256).regex(/^[a-zA-Z0-9\-_:.]+$/, 'letters, digits, -_:. only')
const typeSchema = z.enum(['text', 'json', 'yaml', 'properties', 'xml', 'html', 'toml']).optional()

/**
 * Nacos configuration of one `NacosClient` (`client.config`; not constructed by users): get,
 * publish and remove a document by `dataId` and `group` (default `DEFAULT_GROUP`), and listen to its
 * changes (gRPC push, or HTTP long polling), each listener called with the new content (undefined
 * when removed) once per change, in order. A listener survives Nacos restarts and failovers.
 * @throws {NacosError} `FLOWTAG_NACOS_BAD_ARGUMENT` for an invalid `dataId`/`group`/type;
 *   `FLOWTAG_NACOS_UNREACHABLE`, `FLOWTAG_NACOS_AUTH`, `FLOWTAG_NACOS_HTTP` from the server
 */
export class ConfigClient {
  readonly #ctx: ClientContext
  readonly #entries = new Map<string, Entry>()
  #loop: Promise<void> | undefined
  /** Aborts the poll in flight, so a changed key set takes effect at once. */
  #restart = new AbortController()
  /** Failed polls in a row: the back-off. */
  #failures = 0
  readonly #offRecover: () => void

  constructor (ctx: ClientContext) {
    this.#ctx = ctx
    this.#offRecover = ctx.pool.onRecover(() => {
      // Nacos answers again (to any call of this client): poll now instead of at the end of the back-off.
      if (this.#failures === 0) return
      this.#failures = 0
      this.#restart.abort()
    })
  }

  /** Current content; undefined when absent. Served from the last known content when Nacos is unreachable. */
  async get (dataId: string, group?: string): Promise<string | undefined> {
    const e = this.#entry(dataId, group)
    try {
      return await this.#fetch(e)
    } catch (err) {
      if ((err as NacosError).code !== errorCodes.UNREACHABLE) throw err
      if (e.known || (await this.#fromSnapshot(e))) {
        this.#ctx.logger.warn({ dataId: e.dataId, group: e.group, err }, 'nacos unreachable, serving config from cache')
        return e.content
      }
      throw err
    }
  }

  async publish (dataId: string, group: string | undefined, content: string, type?: string): Promise<void> {
    const e = this.#entry(dataId, group)
    if (typeof content !== 'string' || content.trim() === '') throw new NacosError(errorCodes.BAD_ARGUMENT, 'invalid argument "content": a non-blank string')
    const t = parseArgument(typeSchema, type, 'type')
    await this.#ctx.pool.exec('publish config', (tr, r) => tr.publishConfig(r, this.#ctx.options.namespace, e, content, t))
  }

  async remove (dataId: string, group?: string): Promise<void> {
    const e = this.#entry(dataId, group)
    await this.#ctx.pool.exec('remove config', (tr, r) => tr.removeConfig(r, this.#ctx.options.namespace, e))
  }

  /**
   * Call `listener` with the new content (undefined when removed) each time the key changes.
   * If the client did not know the key yet, its first load counts as a change. Changes come from
   * a long poll (v1: held up to `configLongPollTimeoutMs`, @default 30000 ms) or md5 polling
   * (v3: every `configPollIntervalMs`, @default 1000 ms); failed polls back off.
   *
   * @param dataId letters, digits and `-_:.`, at most 256 characters
   * @param group @default the client's group (`'DEFAULT_GROUP'`)
   * @returns the unsubscribe function
   * @throws {NacosError} `FLOWTAG_NACOS_BAD_ARGUMENT` for an invalid key or listener;
   *   `FLOWTAG_NACOS_CLOSED` after `close()`
   */
  listen (dataId: string, group: string | undefined, listener: ConfigListener): () => void {
    if (typeof listener !== 'function') throw new NacosError(errorCodes.BAD_ARGUMENT, 'invalid argument "listener": expected a function')
    if (this.#ctx.closing.aborted) throw new NacosError(errorCodes.CLOSED, 'the Nacos client is closed')
    const e = this.#entry(dataId, group)
    const fresh = e.listeners.size === 0
    e.listeners.add(listener)
    if (fresh) this.#kick()
    return () => {
      e.listeners.delete(listener)
      if (e.listeners.size === 0) this.#kick()
    }
  }

  async close (): Promise<void> {
    this.#offRecover()
    for (const e of this.#entries.values()) clearTimeout(e.failure?.timer)
    this.#restart.abort()
    await this.#loop
  }

  #entry (dataId: string, group: string | undefined): Entry {
    parseArgument(keyPart, dataId, 'dataId')
    const g = group ?? this.#ctx.options.group
    parseArgument(keyPart.max(128), g, 'group')
    const id = `${g}\u0002${dataId}`
    let e = this.#entries.get(id)
    if (e === undefined) this.#entries.set(id, (e = { dataId, group: g, known: false, content: undefined, md5: '', listeners: new Set(), failure: undefined }))
    return e
  }

  #listened (): Entry[] {
    const now = Date.now()
    return [...this.#entries.values()].filter((e) => e.listeners.size > 0 && (e.failure === undefined || e.failure.retryAt <= now))
  }

  /** Start the loop, or restart the poll in flight with the new key set. */
  #kick (): void {
    this.#restart.abort()
    if (this.#loop === undefined && this.#listened().length > 0) {
      this.#loop = this.#run().finally(() => {
        this.#loop = undefined
        if (this.#listened().length > 0 && !this.#ctx.closing.aborted) this.#kick()
      })
    }
  }

  async #run (): Promise<void> {
    const { options, pool, closing } = this.#ctx
    for (;;) {
      const keys = this.#listened()
      if (keys.length === 0 || closing.aborted) return
      this.#restart = new AbortController()
      const signal = AbortSignal.any([closing, this.#restart.signal])
      try {
        const changed = await pool.exec('config long poll', async (t, r) =>
          t.listenConfigs === undefined ? null : t.listenConfigs(r, options.namespace, keys, options.configLongPollTimeoutMs, this.#restart.signal)
        )
        if (changed === null) {
          // No long poll on this server: compare md5 by fetching, then wait a beat.
          for (const e of keys) await this.#fetchListened(e)
          await sleep(options.configPollIntervalMs, undefined, { signal })
        } else {
          for (const k of changed) {
            const e = this.#entries.get(`${k.group}\u0002${k.dataId}`)
            if (e !== undefined) await this.#fetchListened(e)
          }
        }
        this.#failures = 0
      } catch (err) {
        if (closing.aborted) return
        if (signal.aborted) continue
        const failures = ++this.#failures
        // Nothing from the server yet: let listeners start from the disk snapshot.
        for (const e of keys) if (!e.known && (await this.#fromSnapshot(e)) && e.content !== undefined) this.#notify(e)
        const wait = Math.min(1000 * 2 ** Math.min(failures - 1, 5), 30_000)
        this.#ctx.logger.warn({ err, retryInMs: wait }, 'nacos config poll failed')
        await sleep(wait, undefined, { signal }).catch(() => {})
      }
    }
  }

  /** A listened key's fetch: its own failure (the server answered) sets the key aside for a while; the servers' failure is the loop's. */
  async #fetchListened (e: Entry): Promise<void> {
    try {
      await this.#fetch(e)
    } catch (err) {
      if (loopWide(err)) throw err
      this.#failed(e, err as Error)
      return
    }
    if (e.failure !== undefined) {
      clearTimeout(e.failure.timer)
      e.failure = undefined
      this.#ctx.logger.info({ dataId: e.dataId, group: e.group }, 'nacos config readable again')
    }
  }

  #failed (e: Entry, err: Error): void {
    const count = (e.failure?.count ?? 0) + 1
    const retryInMs = Math.min(1000 * 2 ** Math.min(count - 1, 6), 60_000)
    const bytes = (err as { bytes?: unknown }).bytes
    const fields = { dataId: e.dataId, group: e.group, ...(typeof bytes === 'number' ? { bytes } : {}), err, retryInMs }
    // Once per distinct error: the same answer retried every minute must not flood the log.
    if (e.failure?.message === err.message) this.#ctx.logger.debug(fields, 'nacos config still unreadable')
    else this.#ctx.logger.warn(fields, 'nacos config could not be read; listeners keep the last content')
    clearTimeout(e.failure?.timer)
    const timer = setTimeout(() => this.#kick(), retryInMs + 10)
    timer.unref()
    e.failure = { message: err.message, count, retryAt: Date.now() + retryInMs, timer }
  }

  /** Fetch from the server; notify listeners if the content differs from what was held. */
  async #fetch (e: Entry): Promise<string | undefined> {
    const value = await this.#ctx.pool.exec('get config', (t, r) => t.getConfig(r, this.#ctx.options.namespace, e))
    const content = value?.content
    const wasKnown = e.known
    // Unknown before and absent now is no news: listeners hear of a key once it exists.
    const changed = e.known ? e.content !== content : content !== undefined
    e.known = true
    e.content = content
    e.md5 = content === undefined ? '' : (value?.md5 ?? md5(content))
    if (changed || !wasKnown) void this.#ctx.snapshots.saveConfig(e.dataId, e.group, content)
    if (changed) this.#notify(e)
    return content
  }

  async #fromSnapshot (e: Entry): Promise<boolean> {
    const saved = await this.#ctx.snapshots.loadConfig(e.dataId, e.group)
    if (saved === undefined || e.known) return e.known
    e.known = true
    e.content = saved ?? undefined
    e.md5 = saved === null ? '' : md5(saved)
    return true
  }

  #notify (e: Entry): void {
    for (const listener of e.listeners) {
      try {
        listener(e.content)
      } catch (err) {
        this.#ctx.logger.error({ dataId: e.dataId, group: e.group, err }, 'nacos config listener threw')
      }
    }
  }
}

export type { ConfigKey }
