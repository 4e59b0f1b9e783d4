// The official Nacos Java client (tools/java-interop) as a child process: built once per run
// per client version (build.sh caches it under tools/java-interop/target), one JSON line per
// event on stdout, commands on stdin.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'

const tool = resolve(import.meta.dirname, '../../tools/java-interop')
const builds = new Map<string, Promise<string>>()

/** Resolves and compiles the oracle for one nacos-client version; the directory of the build. */
export function buildJavaClient (version: string): Promise<string> {
  let b = builds.get(version)
  if (b === undefined) {
    b = promisify(execFile)(join(tool, 'build.sh'), [version], { timeout: 480_000 }).then(({ stdout }) => stdout.trim())
    builds.set(version, b)
  }
  return b
}

export interface JavaEvent {
  event: string
  t: number
  [k: string]: unknown
}

export interface JavaClient {
  version: string
  events: JavaEvent[]
  proc: ChildProcess
  /** Writes one command line (`publish <dataId> <content>`, `listen <dataId>`). */
  send(line: string): void
  /** `quit` (the client deregisters and shuts down), then resolves when the process has exited. */
  quit(): Promise<void>
  stop(): void
}

export interface JavaClientOptions {
  addr: string
  namespace?: string
  user?: string
  password?: string
  register?: string
  ip?: string
  port?: number
  subscribe?: string
  dataId?: string
}

export async function runJavaClient (version: string, o: JavaClientOptions): Promise<JavaClient> {
  const dir = await buildJavaClient(version)
  const home = mkdtempSync(join(tmpdir(), 'flowtag-java-'))
  const args: string[] = []
  const flag = (name: string, v: string | number | undefined) => {
    if (v !== undefined) args.push(`--${name}`, String(v))
  }
  flag('addr', o.addr)
  flag('namespace', o.namespace)
  flag('user', o.user)
  flag('password', o.password)
  flag('register', o.register)
  flag('ip', o.ip)
  flag('port', o.port)
  flag('subscribe', o.subscribe)
  flag('data-id', o.dataId)
  // A small JVM that starts fast; the client's logs and snapshots in a directory of its own.
  const jvm = ['-Xms32m', '-Xmx160m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', `-DJM.LOG.PATH=${home}`, `-DJM.SNAPSHOT.PATH=${home}`, `-Duser.home=${home}`]
  const proc = spawn('java', [...jvm, '-cp', `${dir}/classes:${dir}/lib/*`, 'dev.flowtag.interop.Interop', ...args], { stdio: ['pipe', 'pipe', 'ignore'] })
  const events: JavaEvent[] = []
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    if (!line.startsWith('{')) return
    try {
      events.push(JSON.parse(line) as JavaEvent)
    } catch {
      // Not an event line.
    }
  })
  const exited = new Promise<void>((r) => proc.once('exit', () => r()))
  void exited.then(() => rmSync(home, { recursive: true, force: true }))
  return {
    version,
    events,
    proc,
    send: (line) => proc.stdin!.write(`${line}\n`),
    async quit () {
      if (proc.exitCode === null) proc.stdin!.end('quit\n')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(timer)
    },
    stop: () => proc.kill('SIGKILL')
  }
}
