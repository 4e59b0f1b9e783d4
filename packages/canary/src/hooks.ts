// Step hooks with Argo Rollouts' outcomes: an HTTP endpoint asked before and after each step and
// on abort answers continue, pause or abort. Fail-safe: a hook that cannot be reached, answers
// an error status or something that is not a valid answer, or does not answer in time pauses the
// canary; it never lets a step pass.
import { request } from 'undici'
import { z } from 'zod'

/** The moments a hook is asked at. */
export type HookName = 'before-step' | 'after-step' | 'abort'

export const HooksSpecSchema = z.strictObject({
  /** Asked before each step's RuleSet is published (the first step included). */
  beforeStep: z.url().optional(),
  /** Asked when a step's analysis has passed, before the next step (or the promotion). */
  afterStep: z.url().optional(),
  /** Told when the canary is rolled back or aborted; its answer is recorded, the rollback always happens. */
  onAbort: z.url().optional(),
  /** How long a hook may take to answer, ms; longer is a pause. */
  timeoutMs: z.number().int().min(1).max(60_000).default(5000)
})

export type HooksSpec = z.output<typeof HooksSpecSchema>

/** What a hook is sent (POST, `application/json`). */
export interface HookRequest {
  hook: HookName
  canary: { service: string, candidate: string, stable: string, phase: string, startedAt: string }
  /** The step concerned (1-based): the one about to be published (`before-step`), the one that passed (`after-step`), the current one (`abort`). */
  step: { index: number, of: number, weight: number, ruleVersion: number | null }
  /** Why the controller asks (the analysis' reason, the rollback's message). */
  message: string
}

/** A hook's answer: a 2xx status with this JSON body. */
export const HookAnswerSchema = z.object({
  outcome: z.enum(['continue', 'pause', 'abort']),
  message: z.string().max(1000).optional()
})

export interface HookResult {
  outcome: 'continue' | 'pause' | 'abort'
  /** What the hook said, or why its answer counts as a pause. */
  reason: string
}

const MAX_BODY = 64 * 1024

/** Ask a hook. Never rejects: every failure is a `pause` with its reason. */
export async function askHook (url: string, body: HookRequest, timeoutMs: number): Promise<HookResult> {
  let status: number
  let text: string
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs)
    })
    status = res.statusCode
    text = await readCapped(res.body)
  } catch (err) {
    const e = err as Error
    const why = e.name === 'TimeoutError' || e.name === 'AbortError' || /timeout/i.test(e.message) ? `no answer within ${timeoutMs} ms` : e.message
    return { outcome: 'pause', reason: `hook ${body.hook} failed (${why}): pausing` }
  }
  if (status < 200 || status >= 300) return { outcome: 'pause', reason: `hook ${body.hook} answered HTTP ${status}: pausing` }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return { outcome: 'pause', reason: `hook ${body.hook} answered no JSON (${JSON.stringify(text.slice(0, 80))}): pausing` }
  }
  const parsed = HookAnswerSchema.safeParse(json)
  if (!parsed.success) return { outcome: 'pause', reason: `hook ${body.hook} answered no valid outcome (expected {"outcome":"continue"|"pause"|"abort"}): pausing` }
  const said = parsed.data.message === undefined ? '' : `: ${parsed.data.message}`
  return { outcome: parsed.data.outcome, reason: `hook ${body.hook} answered ${parsed.data.outcome}${said}` }
}

async function readCapped (body: AsyncIterable<Buffer> & { destroy (): unknown }): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > MAX_BODY) {
      body.destroy()
      return '<answer over 64 KiB>'
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
