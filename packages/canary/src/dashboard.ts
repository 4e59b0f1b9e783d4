// The controller's web page and its small JSON API, on node:http: live share, error rate and p99
// per lane, the rules in force and their convergence, the step, state and history, the top
// diverging shadow routes; promote and abort (also pause/resume) behind a bearer token.
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { NacosClient } from '@flowtag/nacos'
import type { CanaryController } from './controller.ts'
import { readRules } from './controller.ts'
import { CanaryError, errorCodes } from './errors.ts'
import { handleGate } from './gates.ts'
import { PAGE } from './page.ts'
import { readShadowReport, type ShadowReport } from './shadow-report.ts'
import { TERMINAL } from './state.ts'

export interface DashboardOptions {
  controller: CanaryController
  nacos: NacosClient
  /** Token the buttons (and POSTs) must present as `Authorization: Bearer <token>`. @default random, see `token` */
  token?: string
  /** @default 0 (any free port) */
  port?: number
  /** @default '127.0.0.1' */
  host?: string
}

export interface Dashboard {
  /** `http://host:port/` */
  url: string
  token: string
  server: Server
  close (): Promise<void>
}

const COMMANDS = new Set(['promote', 'abort', 'pause', 'resume'])
/** A shadow report read this recently is served again: every open page polls, the processes are read once. */
const SHADOW_REFRESH_MS = 2000

/**
 * Serve the dashboard of a running controller. GET `/` (the page), GET `/api/status`,
 * POST `/api/{promote,abort,pause,resume}` with the token; GET `/api/verdict` (Argo Rollouts'
 * web metric), GET `/api/shadow` (the top diverging shadow routes, as `flowtag shadow report` reads
 * them: `{ routes, read, of, skipped }`, counts and field paths only, never a body) and POST
 * `/flagger/<hook type>` (Flagger's webhooks), read-only, without it.
 * @throws {CanaryError} `FLOWTAG_CANARY_BAD_OPTION` for a token shorter than 8 characters.
 */
export async function startDashboard (options: DashboardOptions): Promise<Dashboard> {
  const token = options.token ?? randomBytes(16).toString('hex')
  if (token.length < 8) throw new CanaryError(errorCodes.BAD_OPTION, '@flowtag/canary: invalid option "token": at least 8 characters')
  const { controller, nacos } = options
  const expected = Buffer.from(`Bearer ${token}`)

  let shadow: { at: number, report: Promise<ShadowReport> } | undefined
  /**
   * The processes that compare the canaried service's pairs: its own instances (a service-entry
   * mirror is compared where it is served) and its callers' (an edge's mirror rule); for a lane
   * canary, every service of the lane (each route then names its service).
   */
  function shadowReport (): Promise<ShadowReport> {
    if (shadow !== undefined && Date.now() - shadow.at < SHADOW_REFRESH_MS) return shadow.report
    const s = controller.state
    const services = new Set([...(s.spec.service === undefined ? [] : [s.spec.service]), ...(s.spec.callers ?? []), ...(s.spec.convergence ?? []), ...(s.lane?.services ?? []).map((x) => x.service)])
    const report = readShadowReport(nacos.naming, {
      services: [...services],
      metricsPath: s.spec.metricsPath,
      timeoutMs: 2000,
      ...(s.spec.service === undefined ? {} : { service: s.spec.service })
    })
    shadow = { at: Date.now(), report }
    return report
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => send(res, 500, { error: err.message }))
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      res.end(PAGE)
      return
    }
    if (req.method === 'GET' && url.pathname === '/api/status') {
      const s = controller.state
      // the loop has stopped: the rollback's (or promotion's) convergence is still worth watching
      if (TERMINAL.has(s.phase)) await controller.refreshConvergence().catch(() => {})
      let rules: unknown = null
      try {
        rules = await readRules(nacos, s.spec)
      } catch (err) {
        rules = { error: (err as Error).message }
      }
      send(res, 200, { state: s, convergence: controller.convergence, series: controller.series.slice(-120), judgement: controller.lastJudgement ?? null, rules })
      return
    }
    if (req.method === 'GET' && url.pathname === '/api/shadow') {
      send(res, 200, await shadowReport())
      return
    }
    const m = /^\/api\/(\w+)$/.exec(url.pathname)
    if (req.method === 'POST' && m !== null && COMMANDS.has(m[1]!)) {
      const given = Buffer.from(req.headers.authorization ?? '')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        send(res, 401, { error: 'a valid token is needed', code: errorCodes.UNAUTHORIZED })
        return
      }
      try {
        await controller.command(m[1] as 'promote', 'dashboard')
        send(res, 200, { ok: true, phase: controller.state.phase })
      } catch (err) {
        send(res, 409, { error: (err as Error).message, code: (err as { code?: string }).code })
      }
      return
    }
    // Argo Rollouts' web metric and Flagger's webhooks (gates.ts): read-only, no token
    if (await handleGate(req, res, url, controller)) return
    send(res, 404, { error: 'not found' })
  }

  server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  await once(server, 'listening')
  const a = server.address() as AddressInfo
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
  return {
    url: `http://${host}:${a.port}/`,
    token,
    server,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

function send (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(JSON.stringify(body))
}
