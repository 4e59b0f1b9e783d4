import { readFile, rename, writeFile } from 'node:fs/promises'
import { z } from 'zod'
import { describeBadOption } from '@flowtag/errors'
import { compileRuleSet, type CompiledRuleSet, type Decision } from './compile.ts'
import { errorCodes, RulesError } from './errors.ts'
import { evaluate } from './evaluate.ts'
import type { Facts } from './facts.ts'
import { parseRuleSet } from './parse.ts'
import type { RuleSet } from './schema.ts'
import { serviceLanes, type ServiceLaneInfo } from './services.ts'
import type { RuleSource } from './source.ts'

/** A pino/Fastify-style logger; only these two levels are used. */
export interface RulesLogger {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

const RuleStoreOptions = z.strictObject({
  source: z.custom<RuleSource>((v) => typeof v === 'object' && v !== null &&
    typeof (v as RuleSource).read === 'function' && typeof (v as RuleSource).watch === 'function',
  { message: 'expected a RuleSource (an object with read() and watch())' }),
  cacheFile: z.string().min(1).optional(),
  startTimeoutMs: z.int().min(1).max(600000).default(5000),
  logger: z.custom<RulesLogger>((v) => typeof v === 'object' && v !== null &&
    typeof (v as RulesLogger).warn === 'function' && typeof (v as RulesLogger).info === 'function',
  { message: 'expected a logger with warn() and info()' }).optional(),
  onError: z.custom<(err: RulesError) => void>((v) => typeof v === 'function', { message: 'expected a function' }).optional()
})
export type RuleStoreOptions = z.input<typeof RuleStoreOptions>

export type ChangeListener = (next: RuleSet, previous: RuleSet | undefined) => void
export type ErrorListener = (err: RulesError) => void

export interface RuleStoreStats {
  /** Documents accepted (from the source or the cache file). */
  accepted: number
  /** Documents refused (invalid JSON or schema), one per distinct bad document. */
  rejected: number
  /** Source failures: unreachable, deleted document, watch errors. */
  sourceErrors: number
  /** Cache-file read/write failures. */
  cacheErrors: number
  /** Leases that ran out while their document was in force (each rule or candidate lane once). */
  leasesExpired: number
}

interface State {
  readonly ruleSet: RuleSet
  readonly compiled: CompiledRuleSet
  readonly raw: string
  readonly origin: string
}

/**
 * Holds the RuleSet in force. Every document from the source is parsed and validated; a
 * good one replaces the state in one assignment (readers never see a half-swapped set), a
 * bad one is refused with one error listing the zod paths and the last good set stays.
 * The last good document is also written to `cacheFile` and read from there at start when
 * the source has nothing to give.
 *
 * Options (validated once with zod):
 * - `source`: a RuleSource (`nacosSource`, `fileSource`, `staticSource`, or any `{ read, watch, close? }`)
 * - `cacheFile`: path of the last good document, read at start when the source has nothing
 *   (Nacos down) @default none
 * - `startTimeoutMs`: how long `ready` waits for the source before falling back to the cache
 *   file, in milliseconds (1..600000) @default 5000
 * - `logger`: pino-like `{ warn, info }` @default none
 * - `onError`: called with every refused document and source/cache failure (a RulesError:
 *   `FLOWTAG_RULES_INVALID`, `FLOWTAG_RULES_SOURCE`, `FLOWTAG_RULES_CACHE`) @default none
 *
 * `ready` never rejects: it resolves with the first RuleSet in force, or `undefined`.
 *
 * @throws {RulesError} `FLOWTAG_RULES_BAD_OPTION` naming the field when an option is invalid
 */
export class RuleStore {
  readonly source: RuleSource
  readonly cacheFile: string | undefined
  readonly ready: Promise<RuleSet | undefined>
  readonly #logger: RulesLogger | undefined
  readonly #startTimeoutMs: number
  readonly #changeListeners = new Set<ChangeListener>()
  readonly #errorListeners = new Set<ErrorListener>()
  readonly #stats: RuleStoreStats = { accepted: 0, rejected: 0, sourceErrors: 0, cacheErrors: 0, leasesExpired: 0 }
  #state: State | undefined
  #lastRejected: string | undefined
  #stopWatch: (() => void) | undefined
  #cacheWrite: Promise<void> = Promise.resolve()
  #closed = false
  #cancelStartWait: () => void = () => {}
  #watched = false
  #leaseTimer: NodeJS.Timeout | undefined

  constructor (options: RuleStoreOptions) {
    const parsed = RuleStoreOptions.safeParse(options)
    if (!parsed.success) {
      const bad = describeBadOption('@flowtag/rules: RuleStore', parsed.error, { schema: RuleStoreOptions })
      throw new RulesError(errorCodes.BAD_OPTION, bad.message, bad)
    }
    this.source = parsed.data.source
    this.cacheFile = parsed.data.cacheFile
    this.#logger = parsed.data.logger
    this.#startTimeoutMs = parsed.data.startTimeoutMs
    if (parsed.data.onError !== undefined) this.#errorListeners.add(parsed.data.onError)
    this.ready = this.#start()
  }

  /** The RuleSet in force, or undefined before the first good document. */
  get current (): RuleSet | undefined { return this.#state?.ruleSet }
  /** The compiled form of `current` (what evaluate() wants on the hot path). */
  get compiled (): CompiledRuleSet | undefined { return this.#state?.compiled }
  /** `version` of the RuleSet in force. */
  get version (): number | undefined { return this.#state?.ruleSet.version }
  get stats (): Readonly<RuleStoreStats> { return { ...this.#stats } }

  /** Evaluate the current RuleSet (see `evaluate`); undefined when there is none yet. Never throws. */
  evaluate (facts: Facts): Decision | undefined {
    const s = this.#state
    return s === undefined ? undefined : evaluate(s.compiled, facts)
  }

  /**
   * The lanes the RuleSet in force declares for `service` (`{ stable, candidates, strict,
   * weights?, expired? }`), or undefined before the first good document or when the set does
   * not name it: the `lanes` option of @flowtag/outbound and @flowtag/grpc is
   * `(service) => rules.serviceLanes(service)`. A Map lookup; never throws.
   */
  serviceLanes (service: string): ServiceLaneInfo | undefined {
    const s = this.#state
    return s === undefined ? undefined : serviceLanes(s.compiled, service)
  }

  /** Called after every swap with the new and the previous set. Returns an unsubscribe function. */
  onChange (listener: ChangeListener): () => void {
    this.#changeListeners.add(listener)
    return () => { this.#changeListeners.delete(listener) }
  }

  /** Called with every refused document and source/cache failure. Returns an unsubscribe function. */
  onError (listener: ErrorListener): () => void {
    this.#errorListeners.add(listener)
    return () => { this.#errorListeners.delete(listener) }
  }

  /** Stop watching, close the source, wait for a pending cache write. Idempotent. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#cancelStartWait()
    clearTimeout(this.#leaseTimer)
    this.#stopWatch?.()
    await this.source.close?.()
    await this.#cacheWrite
  }

  async #start (): Promise<RuleSet | undefined> {
    try {
      this.#stopWatch = this.source.watch((raw) => {
        this.#watched = true
        this.#offer(raw, this.source.name)
      }, (err) => this.#sourceError(err))
    } catch (err) {
      this.#sourceError(err as Error) // a broken custom source must not reject `ready`
    }
    type ReadResult = { raw: string | undefined } | { err: Error }
    const reading: Promise<ReadResult> = Promise.resolve().then(() => this.source.read()).then((raw) => ({ raw }), (err: Error) => ({ err }))
    const timeout = new Promise<'timeout'>((resolve) => {
      const timer = setTimeout(resolve, this.#startTimeoutMs, 'timeout')
      this.#cancelStartWait = () => { clearTimeout(timer); resolve('timeout') }
    })
    const first = await Promise.race([reading, timeout])
    this.#cancelStartWait()
    if (this.#closed) return this.current
    if (first === 'timeout') {
      // a source that hangs (registry down, client retrying) must not keep the cache away
      this.#sourceError(new RulesError(errorCodes.SOURCE, `${this.source.name}: no answer within ${this.#startTimeoutMs} ms; still waiting`))
      reading.then((r) => this.#takeRead(r), () => {})
    } else {
      this.#takeRead(first)
    }
    if (this.#state === undefined && this.cacheFile !== undefined && !this.#closed) await this.#loadCache(this.cacheFile)
    return this.current
  }

  #takeRead (r: { raw: string | undefined } | { err: Error }): void {
    if ('err' in r) {
      this.#sourceError(r.err)
      return
    }
    // a document delivered by the watch meanwhile is at least as new as this read
    if (this.#closed || this.#watched) return
    if (r.raw === undefined) this.#sourceError(new RulesError(errorCodes.SOURCE, `${this.source.name}: no rule document; every request stays in its stable lane until a RuleSet is published there`))
    else this.#offer(r.raw, this.source.name)
  }

  async #loadCache (file: string): Promise<void> {
    let raw: string
    try {
      raw = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#cacheError(`cannot read cache file ${file}: ${(err as Error).message}`, err)
      return
    }
    if (this.#state !== undefined || this.#closed) return // the source answered meanwhile
    this.#offer(raw, `cache file ${file}`, false)
  }

  #offer (raw: string | undefined, origin: string, persist = true): void {
    if (this.#closed) return
    if (raw === undefined) {
      this.#sourceError(new RulesError(errorCodes.SOURCE, `${origin}: rule document deleted; keeping version ${this.version ?? 'none'}`))
      return
    }
    if (raw === this.#state?.raw || raw === this.#lastRejected) return
    let ruleSet: RuleSet
    try {
      ruleSet = parseRuleSet(raw, origin)
    } catch (err) {
      this.#lastRejected = raw
      this.#stats.rejected++
      const e = err as RulesError
      const kept = this.#state === undefined ? 'no rule set in force' : `keeping version ${this.#state.ruleSet.version}`
      this.#emitError(new RulesError(e.code, `${e.message} (${kept})`, { cause: e.cause, issues: e.issues }))
      return
    }
    this.#lastRejected = undefined
    const previous = this.#state?.ruleSet
    this.#state = { ruleSet, compiled: compileRuleSet(ruleSet), raw, origin }
    this.#scheduleLease()
    this.#stats.accepted++
    this.#logger?.info({ version: ruleSet.version, previous: previous?.version, origin }, 'flowtag rules: new rule set in force')
    if (persist && this.cacheFile !== undefined) this.#persist(this.cacheFile, raw)
    for (const l of [...this.#changeListeners]) {
      try {
        l(ruleSet, previous)
      } catch (err) {
        this.#logger?.warn({ err }, 'flowtag rules: onChange listener threw')
      }
    }
  }

  /**
   * One timer for the next lease end of the set in force (none without leases): at that
   * moment the set is recompiled once, so evaluate() and serviceLanes() never read the clock.
   */
  #scheduleLease (): void {
    clearTimeout(this.#leaseTimer)
    this.#leaseTimer = undefined
    const s = this.#state
    if (s === undefined || this.#closed) return
    const shadowNext = s.compiled.shadow?.nextExpiry ?? Infinity
    const next = Math.min(s.compiled.nextExpiry, shadowNext)
    if (next === Infinity) return
    // setTimeout holds at most ~24.8 days; a longer lease is re-armed on the way
    const delay = Math.min(Math.max(0, next - Date.now()), 0x7fffffff)
    this.#leaseTimer = setTimeout(() => this.#leaseEnded(s, next), delay)
    this.#leaseTimer.unref() // never keeps a process alive
  }

  #leaseEnded (s: State, next: number): void {
    if (this.#state !== s || this.#closed) return
    // a timer may fire a millisecond early by Date.now(): judge at the instant it was set for
    const now = Math.max(Date.now(), Math.min(next, Date.now() + 0x7fffffff))
    const compiled = compileRuleSet(s.ruleSet, now)
    const before = new Set([...s.compiled.expired, ...(s.compiled.shadow?.expired ?? []).map((e) => `shadow.${e}`)])
    const ended = [...compiled.expired, ...(compiled.shadow?.expired ?? []).map((e) => `shadow.${e}`)].filter((e) => !before.has(e))
    this.#state = { ...s, compiled }
    if (ended.length > 0) {
      this.#stats.leasesExpired += ended.length
      this.#logger?.info({ version: s.ruleSet.version, expired: ended, at: new Date(now).toISOString() }, 'flowtag rules: lease ran out; traffic returns to the stable lane')
    }
    this.#scheduleLease()
  }

  #persist (file: string, raw: string): void {
    this.#cacheWrite = this.#cacheWrite.then(async () => {
      const tmp = `${file}.${process.pid}.tmp`
      try {
        await writeFile(tmp, raw, 'utf8')
        await rename(tmp, file) // atomic on POSIX: a reader sees the old or the new file, never half
      } catch (err) {
        this.#cacheError(`cannot write cache file ${file}: ${(err as Error).message}`, err)
      }
    })
  }

  #sourceError (err: Error): void {
    if (this.#closed) return
    this.#stats.sourceErrors++
    this.#emitError(err instanceof RulesError ? err : new RulesError(errorCodes.SOURCE, `${this.source.name}: ${err.message}`, { cause: err }))
  }

  #cacheError (message: string, cause: unknown): void {
    this.#stats.cacheErrors++
    this.#emitError(new RulesError(errorCodes.CACHE, message, { cause }))
  }

  #emitError (err: RulesError): void {
    // flowtag's own findings (no document, an invalid RuleSet) say all in their code, message and
    // issues: no stack in the log. One with a cause from underneath (the source's, the disk's)
    // keeps the error, stack and cause, for whoever has to find it.
    const fields = err.cause === undefined ? { code: err.code, issues: err.issues } : { err, code: err.code, issues: err.issues }
    this.#logger?.warn(fields, 'flowtag rules: ' + err.message.slice(0, 2000))
    for (const l of [...this.#errorListeners]) {
      try {
        l(err)
      } catch (e) {
        this.#logger?.warn({ err: e }, 'flowtag rules: onError listener threw')
      }
    }
  }
}

/**
 * Create a RuleStore and start reading its source: the same as `new RuleStore(options)`.
 *
 * @deprecated Use `new RuleStore(options)`, the one constructor form of flowtag's entry classes
 * (as `new NacosClient(...)`, `new FlowTagDispatcher(...)`); removed in the next minor version.
 * @throws {RulesError} `FLOWTAG_RULES_BAD_OPTION` naming the field when an option is invalid
 */
export function createRuleStore (options: RuleStoreOptions): RuleStore {
  return new RuleStore(options)
}
