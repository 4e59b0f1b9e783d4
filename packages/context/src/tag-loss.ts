// Tag-loss detection: an outbound call from a tagged process that has no flow (made outside
// any request's async context: a start-up timer, an emitter fired from elsewhere, a queue
// consumer) or carries a tag other than its flow's (a callback run in another request's
// context, e.g. a callback-style connection pool). Counted per call site; thrown in strict mode.
import { metrics, type Counter } from '@opentelemetry/api'
import { ContextError, errorCodes } from './errors.ts'
import { runWithFlow, type FlowContext } from './flow.ts'

/** `off`: no checks; `count`: metric and stats; `strict`: also throw at the call site (tests). */
export type TagLossMode = 'off' | 'count' | 'strict'
export type TagLossReason = 'missing' | 'mismatch'

const MODES: readonly TagLossMode[] = ['off', 'count', 'strict']
/** Distinct call sites kept apart; beyond this they are counted as `other` (bounded cardinality). */
const MAX_SITES = 200
/** Stack captures per second at most; further losses in that second count as site `unsampled`. */
const MAX_STACKS_PER_SECOND = 100
let stackSecond = 0
let stacksThisSecond = 0

let mode: TagLossMode | undefined
let counter: Counter | undefined
const counts = new Map<string, number>()
const frames = new Set<string>()

function envMode (): TagLossMode | undefined {
  const v = process.env.FLOWTAG_TAG_LOSS
  return MODES.includes(v as TagLossMode) ? v as TagLossMode : undefined
}

/**
 * Set the process-wide mode. A FlowTagger arms `count` when it is created (the process is then
 * "tagged"); before that, outbound calls are not checked. `FLOWTAG_TAG_LOSS=off|count|strict`
 * in the environment wins over the default, not over an explicit call.
 */
export function setTagLossMode (next: TagLossMode): void {
  mode = next
}

/** Called by FlowTagger: arm the detector unless it was set already (explicitly or by env). */
export function armTagLoss (): void {
  mode ??= envMode() ?? 'count'
}

export function tagLossMode (): TagLossMode {
  return mode ?? 'off'
}

/**
 * Run `fn` as deliberately untagged (a background job, a warm-up call): its outbound calls
 * have a flow without a tag, so they go to the stable lane and are not counted as lost.
 */
export function runUntagged<T> (fn: () => T): T {
  return runWithFlow({ baggage: {} }, fn)
}

/** Losses counted in this process, by `<reason> <site>` (for tests and health pages). */
export function tagLossCounts (): Record<string, number> {
  return Object.fromEntries(counts)
}

export function resetTagLossCounts (): void {
  counts.clear()
  frames.clear()
}

// Frames of Node itself, of undici and of flowtag's own code are not the call site.
const SKIP = /^node:|node_modules|\/packages\/(context|outbound|service)\/src\//

/** The first stack frame outside Node, libraries and flowtag, as `file:line` (cwd-relative). */
function callSite (): string {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 30
  const stack = new Error().stack ?? ''
  Error.stackTraceLimit = limit
  const cwd = `${process.cwd()}/`
  for (const line of stack.split('\n').slice(2)) {
    const m = /\(?((?:file:\/\/)?\/[^()]+?):(\d+):\d+\)?$/.exec(line.trim())
    if (m === null || SKIP.test(m[1]!)) continue
    return `${m[1]!.replace('file://', '').replace(cwd, '')}:${m[2]}`
  }
  return 'unknown'
}

/**
 * Check one outbound call. `flow` is the caller's flow (currentFlow() at the call), `carried`
 * the tag the caller put in its own headers, if any. Cheap when nothing is lost: two compares.
 * @returns undefined, or in strict mode the ContextError (FLOWTAG_CONTEXT_TAG_LOST) to fail the call with
 */
export function checkOutboundFlow (flow: FlowContext | undefined, carried: string | undefined): ContextError | undefined {
  if (mode === undefined || mode === 'off') return undefined
  let reason: TagLossReason
  if (flow === undefined) reason = 'missing'
  else if (carried !== undefined && carried !== flow.tag) reason = 'mismatch'
  else return undefined
  const second = Math.floor(Date.now() / 1000)
  if (second !== stackSecond) { stackSecond = second; stacksThisSecond = 0 }
  let site = ++stacksThisSecond <= MAX_STACKS_PER_SECOND ? callSite() : 'unsampled'
  if (site !== 'unsampled' && !frames.has(site)) {
    if (frames.size >= MAX_SITES) site = 'other'
    else frames.add(site)
  }
  const key = `${reason} ${site}`
  counts.set(key, (counts.get(key) ?? 0) + 1)
  counter ??= metrics.getMeter('@flowtag/context').createCounter('flowtag.context.tag_loss', {
    description: 'Outbound calls that left without the request flow (missing) or with another tag (mismatch), by call site'
  })
  counter.add(1, { reason, 'code.site': site })
  if (mode !== 'strict') return undefined
  const what = reason === 'missing'
    ? 'outside any request\'s async context (no flow)'
    : `with tag "${carried}" while its flow is "${flow!.tag ?? '(untagged)'}"`
  return new ContextError(errorCodes.TAG_LOST, `@flowtag/context: an outbound call at ${site} was made ${what}; bind the callback to the request (AsyncResource.bind, EventEmitterAsyncResource) or wrap deliberate background work in runUntagged()`)
}
