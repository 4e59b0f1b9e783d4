// The canary's verdict for the Kubernetes controllers, on the dashboard's server:
// - GET /api/verdict: JSON with a `verdict` field for Argo Rollouts' `web` metric provider
//   (`jsonPath: "{$.verdict}"`, `successCondition: result == "pass"`, `failureCondition: result == "fail"`).
// - POST /flagger/<hook type>: a Flagger webhook. Flagger posts {name, namespace, phase, checksum?,
//   metadata?} and approves on 200, halts on any other status (403 here).
// Both only read the controller's state: no token is needed, nothing changes.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { z } from 'zod'
import type { CanaryController } from './controller.ts'
import { errorCodes } from './errors.ts'
import { verdictOf, type Verdict } from './verdict.ts'

/** Flagger's CanaryWebhookPayload. */
export const FlaggerPayloadSchema = z.object({
  name: z.string().min(1),
  namespace: z.string().min(1),
  phase: z.string().min(1),
  checksum: z.string().optional(),
  /** `service`, when given, must be the controller's service. */
  metadata: z.record(z.string(), z.string()).optional()
})

/**
 * Flagger's hook types served, and when each answers 200. The confirm gates open only on a
 * `pass`; a `rollout` check fails (403) only on a `fail` (an inconclusive verdict must not count
 * as a failed check); a `rollback` hook answers 200 (Flagger rolls back) only on a `fail`.
 */
export const FLAGGER_HOOKS: Readonly<Record<string, (v: Verdict['verdict']) => boolean>> = {
  'confirm-rollout': (v) => v === 'pass',
  'confirm-traffic-increase': (v) => v === 'pass',
  'confirm-promotion': (v) => v === 'pass',
  rollout: (v) => v !== 'fail',
  rollback: (v) => v === 'fail'
}

const MAX_BODY = 64 * 1024

/** Serve the verdict routes; false when `req` is not one of them. */
export async function handleGate (req: IncomingMessage, res: ServerResponse, url: URL, controller: CanaryController): Promise<boolean> {
  if (url.pathname === '/api/verdict' && req.method === 'GET') {
    const service = url.searchParams.get('service')
    if (service !== null && service !== controller.service) {
      send(res, 404, { error: `this controller runs the canary of "${controller.service}", not "${service}"`, code: errorCodes.CONFLICT })
      return true
    }
    send(res, 200, verdictOf(controller.state))
    return true
  }
  const m = /^\/flagger\/([a-z-]+)$/.exec(url.pathname)
  if (m === null) return false
  const answer = FLAGGER_HOOKS[m[1]!]
  if (answer === undefined || req.method !== 'POST') {
    send(res, 404, { error: `not a Flagger hook served here (POST /flagger/{${Object.keys(FLAGGER_HOOKS).join(',')}})` })
    return true
  }
  let body: unknown
  try {
    body = JSON.parse(await readBody(req))
  } catch (err) {
    send(res, 400, { error: `the body is not Flagger's JSON payload: ${(err as Error).message}`, code: errorCodes.BAD_OPTION })
    return true
  }
  const parsed = FlaggerPayloadSchema.safeParse(body)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    send(res, 400, { error: `invalid Flagger payload: "${issue.path.join('.') || '(body)'}": ${issue.message}`, code: errorCodes.BAD_OPTION })
    return true
  }
  const service = parsed.data.metadata?.service
  if (service !== undefined && service !== controller.service) {
    send(res, 403, { error: `this controller runs the canary of "${controller.service}", not "${service}"`, code: errorCodes.CONFLICT })
    return true
  }
  const v = verdictOf(controller.state)
  const ok = answer(v.verdict)
  send(res, ok ? 200 : 403, { ...v, hook: m[1], approved: ok, canary: { name: parsed.data.name, namespace: parsed.data.namespace, phase: parsed.data.phase } })
  return true
}

async function readBody (req: IncomingMessage): Promise<string> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) throw new Error('over 64 KiB')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function send (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(JSON.stringify(body))
}
