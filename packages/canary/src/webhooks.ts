// Webhooks as Flagger has them: a confirm-promotion gate (2xx = go on) and notifications of
// what the canary did. A failing notification is logged, never blocks the canary.
import { request } from 'undici'

export interface CanaryEvent {
  /** `step`, `alert`, `pause`, `resume`, `promote`, `rollback`, `abort`, `deadline` */
  event: string
  /** The canary's key: its service, or `lane:<lane>` for a lane canary. */
  service: string
  /** A lane canary's lane. */
  lane?: string
  candidate: string
  stable: string
  step: number
  weight: number
  ruleVersion: number | undefined
  message: string
  data?: Record<string, unknown>
}

async function post (url: string, body: unknown, timeoutMs: number): Promise<number> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs)
  })
  await res.body.dump()
  return res.statusCode
}

/** Ask the gate: true on a 2xx answer, false on anything else (other status, timeout, refused). */
export async function confirm (url: string, event: CanaryEvent, timeoutMs: number): Promise<boolean> {
  try {
    const status = await post(url, { ...event, event: 'confirm-promotion' }, timeoutMs)
    return status >= 200 && status < 300
  } catch {
    return false
  }
}

/** Tell every URL; resolves with the failures (never rejects). */
export async function notify (urls: readonly string[], event: CanaryEvent, timeoutMs: number): Promise<string[]> {
  const results = await Promise.all(urls.map(async (u) => {
    try {
      const status = await post(u, event, timeoutMs)
      return status >= 200 && status < 300 ? undefined : `${u}: HTTP ${status}`
    } catch (err) {
      return `${u}: ${(err as Error).message}`
    }
  }))
  return results.filter((r): r is string => r !== undefined)
}
