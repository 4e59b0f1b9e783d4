import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const APPS: Record<string, string> = {
  gateway: join(dirname(require.resolve('@flowtag/gateway/package.json')), 'src/main.ts'),
  'order-service': join(dirname(require.resolve('@flowtag/order-service/package.json')), 'src/main.ts'),
  'inventory-service': join(dirname(require.resolve('@flowtag/inventory-service/package.json')), 'src/main.ts'),
  'user-service': join(dirname(require.resolve('@flowtag/user-service/package.json')), 'src/main.ts'),
  'notification-service': join(dirname(require.resolve('@flowtag/notification-service/package.json')), 'src/main.ts')
}

/**
 * The key every app of this run signs and verifies lanes with (FLOWTAG_TAG_KEY wins): a forged
 * `x-flow-tag` sent straight to a service is then ignored. One per run, never written anywhere.
 */
export const DEMO_TAG_KEY = process.env.FLOWTAG_TAG_KEY ?? randomBytes(24).toString('base64url')

export interface AppProcess {
  name: string
  version: string
  child: ChildProcess
  /** `http://127.0.0.1:PORT` once listening. */
  url: string
  port: number
  /** Log lines (pino JSON) kept for inspection. */
  logs: string[]
  /** SIGTERM (deregister, drain, exit) and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export interface StartOptions {
  nacosAddr: string
  port?: number
  env?: Record<string, string>
  /** Forward each log line here (the demo keeps them quiet; tests keep them for failures). */
  onLog?: (app: string, line: string) => void
  /** How long to wait for the app to listen, in ms. @default 20000 */
  listenTimeoutMs?: number
}

/** Start one demo app as its own process and wait until it listens. */
export async function startApp (name: keyof typeof APPS | string, version: string, opts: StartOptions): Promise<AppProcess> {
  const script = APPS[name]
  if (script === undefined) throw new Error(`unknown app ${name}`)
  const child = spawn(process.execPath, [script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NACOS_SERVER_ADDR: opts.nacosAddr,
      SERVICE_VERSION: version,
      PORT: String(opts.port ?? 0),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DRAIN_MS: '300',
      FLOWTAG_TAG_KEY: DEMO_TAG_KEY,
      ...opts.env
    }
  })
  const logs: string[] = []
  let buffered = ''
  const onData = (d: Buffer) => {
    buffered += d.toString('utf8')
    let nl
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      if (logs.length > 2000) logs.shift()
      logs.push(line)
      opts.onLog?.(`${name}@${version}`, line)
    }
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>

  const listening = new Promise<string>((resolve, reject) => {
    const limit = opts.listenTimeoutMs ?? 20_000
    const timer = setTimeout(() => reject(new Error(`${name}@${version} did not listen within ${limit / 1000} s:\n${logs.join('\n')}`)), limit)
    const check = () => {
      for (const line of logs) {
        const m = /"address":"(http:\/\/[^"]+)"/.exec(line)
        if (m !== null && line.includes('"listening"')) {
          clearTimeout(timer)
          child.stdout!.off('data', check)
          resolve(m[1]!)
          return
        }
      }
    }
    child.stdout!.on('data', check)
    exited.then(([code]) => {
      clearTimeout(timer)
      reject(new Error(`${name}@${version} exited (${code}) before listening:\n${logs.join('\n')}`))
    }, reject)
  })
  let url: string
  try {
    url = await listening
  } catch (err) {
    // never leave a half-started app behind
    child.kill('SIGKILL')
    throw err
  }
  return {
    name,
    version,
    child,
    url,
    port: Number(new URL(url).port),
    logs,
    async stop (signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      const [code] = await exited
      return code
    }
  }
}

/** Wait until one of `app`'s log lines contains `text` (e.g. notification-service's `"msg":"consuming"`). */
export async function waitForLog (app: AppProcess, text: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!app.logs.some((l) => l.includes(text))) {
    if (app.child.exitCode !== null || app.child.signalCode !== null) throw new Error(`${app.name}@${app.version} exited before logging ${text}:\n${app.logs.slice(-20).join('\n')}`)
    if (Date.now() > end) throw new Error(`${app.name}@${app.version} did not log ${text} within ${timeoutMs / 1000} s:\n${app.logs.slice(-20).join('\n')}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
