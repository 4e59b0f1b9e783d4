// Child processes for tests: Node scripts run with this Node, always bounded in time.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'

export interface ChildOptions {
  args?: readonly string[]
  /** Added to the parent's environment (tap's NODE_OPTIONS included, so the child's coverage counts). */
  env?: Record<string, string>
  /** stdin/stdout/stderr(/ipc) as `spawn` takes it. @default ['ignore', 'pipe', 'pipe'] */
  stdio?: SpawnOptions['stdio']
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Anything with `teardown`, such as a tap Test: the child is killed when the test ends. */
export interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * Start `node <script> ...args` under this process's Node options (`process.execArgv`: tap's
 * loaders and coverage hooks when run by tap); killed (SIGKILL) at the end of the test `t`.
 *
 * The same options matter for coverage: a child that loaded the sources another way than its
 * test (Node's type stripping beside tap's TypeScript loader, whose code offsets and source maps
 * differ) writes coverage that cannot be merged with the test's, and the package's figure comes
 * out wrong (a package measured 86 % instead of 98 % with one such child).
 */
export function startNode (t: Teardown, script: string, options: ChildOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [...process.execArgv, script, ...(options.args ?? [])], {
    env: { ...process.env, ...options.env },
    stdio: options.stdio ?? ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => stopChild(child))
  return child
}

/**
 * Resolve with the child's exit code or signal once it exits. Bounded: after `timeoutMs` the
 * child is killed and this rejects with an error naming `what`.
 *
 * @param timeoutMs @default 30000
 */
export function exitOf (child: ChildProcess, what = 'child process', timeoutMs = 30_000): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${what} did not exit within ${timeoutMs} ms`))
    }, timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
  })
}

/** Run `node <script> ...args` to its end and collect its output; bounded by `timeoutMs` (@default 30000). */
export async function runNode (t: Teardown, script: string, options: ChildOptions = {}, timeoutMs = 30_000): Promise<ChildResult> {
  const child = startNode(t, script, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const { code, signal } = await exitOf(child, script, timeoutMs)
  return { code, signal, stdout, stderr }
}

/** SIGKILL the child (if still running) and wait until it is gone. */
export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await gone
}
