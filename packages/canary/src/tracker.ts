// The window of one step, from the reading it opened at to the latest one, built reading by
// reading (the controller reads every tick). Each instance's figures are summed from the increments
// between its good readings, so its restarts are seen, counted and judged instead of being read as
// "count from zero" (which showed only the latest life of a crash-looping process), and an
// instance that could not be read is marked, not silently left out. The callers' failed calls to
// each lane are summed the same way.
import type { ShadowFigures, ShadowReading } from './divergence.ts'
import type { CallFigures, CallerReading, InstanceReading, Reading } from './scrape.ts'
import { addInto, countable, emptyFigures, figuresProblem, summarize, wentDown, type Figures, type LaneWindow } from './window.ts'

/**
 * How far before the window's opening (controller clock) an instance's start time (its own clock)
 * may be and still count as started in the window: clocks of hosts differ a little.
 */
export const START_SKEW_SECONDS = 5

interface Track {
  key: string
  lane: string
  /** Increments since the window opened (or since the instance's first usable reading). */
  sum: Figures
  /** Its last good cumulative figures; undefined until one was read. */
  last: Figures | undefined
  startTime: number | undefined
  restarts: number
  /** Its figures start after the window opened: first read in the window, but started before it. */
  joinedLate: boolean
  /** At the latest reading: not listed (`gone`), or listed but not read (`unread`, with why). */
  absent: 'gone' | 'unread' | undefined
  why: string | undefined
  /** Left discovery since its last good reading. */
  wasGone: boolean
  /** Listed at the opening: it did not start in the window, whatever its start time says. */
  atOpening: boolean
}

/** One process's shadow counts of the service (an instance's or a caller's), summed like a caller's calls. */
interface ShadowTrack {
  last: Map<string, ShadowFigures> | undefined
  startTime: number | undefined
  sum: Map<string, ShadowFigures>
}

interface CallerTrack {
  /** Its last cumulative counts; undefined until it was read once (its zero is then that reading). */
  last: Map<string, CallFigures> | undefined
  startTime: number | undefined
  sum: Map<string, CallFigures>
}

/**
 * What is wrong with a reading, from any source: a figure that is not a finite number ≥ 0 (NaN,
 * ±Inf, negative), or a start time that is not a positive finite number. Undefined when sound.
 */
export function readingProblem (r: Reading): string | undefined {
  if (!Number.isFinite(r.at)) return `reading time ${r.at}`
  for (const i of r.instances.values()) {
    const bad = i.figures === undefined ? undefined : figuresProblem(i.figures)
    if (bad !== undefined) return `instance ${i.key} (${i.lane}): ${bad}`
    if (i.startTime !== undefined && !(countable(i.startTime) && i.startTime > 0)) return `instance ${i.key} (${i.lane}): start time ${i.startTime}`
  }
  for (const c of r.callers?.values() ?? []) {
    for (const [lane, f] of c.calls ?? []) {
      if (!countable(f.requests)) return `caller ${c.key}: calls to ${lane} ${f.requests}`
      if (!countable(f.failures)) return `caller ${c.key}: failed calls to ${lane} ${f.failures}`
    }
    if (c.startTime !== undefined && !(countable(c.startTime) && c.startTime > 0)) return `caller ${c.key}: start time ${c.startTime}`
  }
  for (const sh of r.shadow?.values() ?? []) {
    for (const [lane, f] of sh.lanes ?? []) {
      if (!countable(f.compared)) return `shadow pairs compared by ${sh.key} in ${lane}: ${f.compared}`
      if (!countable(f.diverged) || f.diverged > f.compared) return `shadow pairs diverged by ${sh.key} in ${lane}: ${f.diverged}`
    }
  }
  return undefined
}

export class WindowTracker {
  /** When the window opened (the opening reading's time), ms since the epoch. */
  readonly openedAt: number
  /** The reading the window opened at (its zero). */
  readonly opening: Reading
  readonly #tracks = new Map<string, Track>()
  readonly #callers = new Map<string, CallerTrack>()
  readonly #shadow = new Map<string, ShadowTrack>()

  /** Opens the window at `opening`: its figures are the zero of every instance (and caller) it holds. */
  constructor (opening: Reading) {
    this.openedAt = opening.at
    this.opening = opening
    for (const i of opening.instances.values()) {
      const t = this.#newTrack(i)
      t.atOpening = true
      if (i.figures !== undefined) {
        t.last = i.figures
        t.startTime = i.startTime
      } else {
        // Read at the opening, but without figures: its zero is unknown until it is read.
        t.absent = 'unread'
        t.why = i.error ?? 'not read'
      }
    }
    for (const c of opening.callers?.values() ?? []) {
      this.#callers.set(c.key, { last: c.calls, startTime: c.calls === undefined ? undefined : c.startTime, sum: new Map() })
    }
    for (const sh of opening.shadow?.values() ?? []) {
      this.#shadow.set(sh.key, { last: sh.lanes, startTime: sh.lanes === undefined ? undefined : sh.startTime, sum: new Map() })
    }
  }

  /** Add the next reading (in time order; the opening one is not added again). */
  add (r: Reading): void {
    for (const t of this.#tracks.values()) {
      if (!r.instances.has(t.key)) {
        t.absent = 'gone'
        t.why = 'no longer listed'
        t.wasGone = true
      }
    }
    for (const i of r.instances.values()) this.#addInstance(i)
    for (const c of r.callers?.values() ?? []) this.#addCaller(c)
    for (const sh of r.shadow?.values() ?? []) this.#addShadow(sh)
  }

  /** The shadow pairs of a mirror lane compared in the window, summed over every process that compares them. */
  shadow (lane: string): ShadowFigures {
    const f = { compared: 0, diverged: 0 }
    for (const t of this.#shadow.values()) {
      const s = t.sum.get(lane)
      if (s === undefined) continue
      f.compared += s.compared
      f.diverged += s.diverged
    }
    return f
  }

  /**
   * The lane's window: its instances' figures plus the calls its callers saw fail that it did not
   * count itself (a process that dies mid-request never records it), its restarts, and why its
   * figures are partial, if they are.
   */
  lane (lane: string): LaneWindow {
    const { figures, restarts, partial, callerFailures, unseen } = this.#compose(lane)
    // Failures the callers saw that the lane did not count as its own network errors: their
    // requests were never recorded by the lane (it died first), so they are added as requests too.
    const f = { ...figures, requests: figures.requests + unseen, networkErrors: figures.networkErrors + unseen }
    return summarize(f, { restarts, partial, callerFailures })
  }

  /**
   * The lane's cumulative figures in the window as its instances counted them, and the failed calls
   * only its callers saw (which `lane()` adds as requests and network errors).
   */
  figures (lane: string): { figures: Figures, unseen: number } {
    const { figures, unseen } = this.#compose(lane)
    return { figures, unseen }
  }

  #compose (lane: string): { figures: Figures, restarts: number, partial: string[], callerFailures: number, unseen: number } {
    const f = emptyFigures()
    let restarts = 0
    const partial: string[] = []
    for (const t of this.#tracks.values()) {
      if (t.lane !== lane) continue
      addInto(f, t.sum)
      // An instance that left discovery counts as a restart while away (a process that died); once
      // back, its start time says whether it was one.
      restarts += t.restarts + (t.absent === 'gone' ? 1 : 0)
      if (t.restarts > 0) partial.push(`${t.key} restarted${t.restarts > 1 ? ` ${t.restarts} times` : ''}`)
      if (t.absent === 'gone') partial.push(`${t.key} is no longer listed`)
      else if (t.absent === 'unread') partial.push(`${t.key} could not be read (${t.why})`)
      else if (t.joinedLate) partial.push(`${t.key} was first read after the window opened`)
    }
    let callerFailures = 0
    for (const c of this.#callers.values()) callerFailures += c.sum.get(lane)?.failures ?? 0
    return { figures: f, restarts, partial, callerFailures, unseen: Math.max(0, callerFailures - f.networkErrors) }
  }

  /**
   * Whether opening the window again at the latest reading gives the lane whole figures: every
   * instance of the lane was read at it (none gone, none unread).
   */
  reopenable (lane: string): boolean {
    for (const t of this.#tracks.values()) if (t.lane === lane && t.absent !== undefined) return false
    return true
  }

  #newTrack (i: InstanceReading): Track {
    const t: Track = { key: i.key, lane: i.lane, sum: emptyFigures(), last: undefined, startTime: undefined, restarts: 0, joinedLate: false, absent: undefined, why: undefined, wasGone: false, atOpening: false }
    this.#tracks.set(i.key, t)
    return t
  }

  /** Started in the window (or it does not say when it started: then it is taken to be new, as always). */
  #bornInWindow (startTime: number | undefined): boolean {
    return startTime === undefined || startTime >= this.openedAt / 1000 - START_SKEW_SECONDS
  }

  #addInstance (i: InstanceReading): void {
    const t = this.#tracks.get(i.key) ?? this.#newTrack(i)
    if (i.figures === undefined) {
      if (t.absent !== 'gone') t.absent = 'unread'
      t.why = i.error ?? 'not read'
      return
    }
    t.lane = i.lane
    const now = i.figures
    if (t.last === undefined) {
      // First figures of this instance in the window: from zero when it started in the window.
      if (!t.atOpening && this.#bornInWindow(i.startTime)) addInto(t.sum, now)
      else t.joinedLate = true
    } else {
      const newStart = i.startTime !== undefined && t.startTime !== undefined && i.startTime !== t.startTime
      const reset = wentDown(now, t.last)
      // Gone from discovery and back, and nothing says it is the same process: a restart.
      const unproven = t.wasGone && (i.startTime === undefined || t.startTime === undefined)
      if (newStart || reset || unproven) t.restarts++
      // The new life's counts are all in the window; the old life's since its last reading are lost.
      addInto(t.sum, newStart || reset ? now : difference(now, t.last))
    }
    t.last = now
    if (i.startTime !== undefined) t.startTime = i.startTime
    t.absent = undefined
    t.why = undefined
    t.wasGone = false
  }

  /**
   * One process's cumulative shadow counts: increments since its previous reading; a new life (a
   * new start time, a counter that went down) counts from zero; a process first seen after the
   * opening counts from zero when it started in the window, else from this reading.
   */
  #addShadow (sh: ShadowReading): void {
    if (sh.lanes === undefined) return // not read: its counters carry on; the next reading has the gap
    let t = this.#shadow.get(sh.key)
    if (t === undefined) {
      const fresh = sh.startTime !== undefined && this.#bornInWindow(sh.startTime)
      t = { last: fresh ? new Map() : undefined, startTime: sh.startTime, sum: new Map() }
      this.#shadow.set(sh.key, t)
    }
    if (t.last === undefined) {
      t.last = sh.lanes
      t.startTime = sh.startTime
      return
    }
    const restarted = sh.startTime !== undefined && t.startTime !== undefined && sh.startTime !== t.startTime
    for (const [lane, now] of sh.lanes) {
      const before = restarted ? undefined : t.last.get(lane)
      const reset = before !== undefined && (now.compared < before.compared || now.diverged < before.diverged)
      const inc = before === undefined || reset ? now : { compared: now.compared - before.compared, diverged: now.diverged - before.diverged }
      const s = t.sum.get(lane) ?? { compared: 0, diverged: 0 }
      t.sum.set(lane, { compared: s.compared + inc.compared, diverged: s.diverged + inc.diverged })
    }
    t.last = sh.lanes
    if (sh.startTime !== undefined) t.startTime = sh.startTime
  }

  #addCaller (c: CallerReading): void {
    if (c.calls === undefined) return // not read: its counters carry on; the next reading has the gap
    let t = this.#callers.get(c.key)
    if (t === undefined) {
      // A caller known to have started in the window counts from zero; another one's counts so far
      // (a previous canary's failures, say) are not this window's: its first reading is its zero.
      const fresh = c.startTime !== undefined && this.#bornInWindow(c.startTime)
      t = { last: fresh ? new Map() : undefined, startTime: c.startTime, sum: new Map() }
      this.#callers.set(c.key, t)
    }
    if (t.last === undefined) {
      t.last = c.calls
      t.startTime = c.startTime
      return
    }
    const restarted = c.startTime !== undefined && t.startTime !== undefined && c.startTime !== t.startTime
    for (const [lane, now] of c.calls) {
      const before = restarted ? undefined : t.last.get(lane)
      const reset = before !== undefined && (now.requests < before.requests || now.failures < before.failures)
      const inc = before === undefined || reset ? now : { requests: now.requests - before.requests, failures: now.failures - before.failures }
      const s = t.sum.get(lane) ?? { requests: 0, failures: 0 }
      t.sum.set(lane, { requests: s.requests + inc.requests, failures: s.failures + inc.failures })
    }
    t.last = c.calls
    if (c.startTime !== undefined) t.startTime = c.startTime
  }
}

/** `now − before` of two cumulative readings of one process (no counter went down). */
function difference (now: Figures, before: Figures): Figures {
  const prev = new Map(before.buckets)
  return {
    requests: now.requests - before.requests,
    serverErrors: now.serverErrors - before.serverErrors,
    networkErrors: now.networkErrors - before.networkErrors,
    seconds: now.seconds - before.seconds,
    buckets: now.buckets.map(([le, n]) => [le, n - (prev.get(le) ?? 0)])
  }
}
