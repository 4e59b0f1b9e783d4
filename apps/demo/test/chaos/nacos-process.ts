// The Nacos the chaos suite may SIGKILL and restart empty: the dev server as a child process, or
// the real Nacos that tools/real-nacos/start.sh runs (its pid file; restarted by the same script,
// which wipes its data, so it comes back empty).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../../..')

export interface NacosProcess {
  readonly kind: 'dev server' | 'real Nacos 2.5.0' | 'real Nacos 2.5.0 cluster node'
  readonly addr: string
  kill(): Promise<void>
  /** Start again, empty; resolves once it answers. */
  restart(): Promise<void>
  close(): Promise<void>
}

async function freePort (): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

export async function devNacos (): Promise<NacosProcess> {
  const bin = join(dirname(fileURLToPath(import.meta.resolve('@flowtag/nacos-dev-server'))), 'bin.ts')
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    const c = spawn(process.execPath, [bin, '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] })
    child = c
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('dev server did not start within 20 s')), 20_000)
      c.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) {
          clearTimeout(timer)
          resolve()
        }
      })
      c.once('exit', (code) => { clearTimeout(timer); reject(new Error(`dev server exited (${code})`)) })
    })
  }
  await start()
  const kill = async () => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }
  return { kind: 'dev server', addr: `127.0.0.1:${port}`, kill, restart: start, close: kill }
}

/**
 * The real Nacos 2.5.0 at `addr`, started by tools/real-nacos/start.sh (which this restarts);
 * with `cluster` (the members, `127.0.0.1:P1,...`), one node of the cluster start-cluster.sh ran,
 * restarted as a member of it.
 */
export function realNacos (addr: string, cluster?: string): NacosProcess {
  const port = Number(addr.split(':').pop())
  const home = join(process.env.REAL_NACOS_HOME ?? join(repo, '.real-nacos'), `v2-${port}`)
  return {
    kind: cluster === undefined ? 'real Nacos 2.5.0' : 'real Nacos 2.5.0 cluster node',
    addr,
    async kill () {
      const pid = Number((await readFile(join(home, 'nacos.pid'), 'utf8')).trim())
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        return // already gone
      }
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0)
        } catch {
          return
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    async restart () {
      // Three times at most: on a starved machine Derby's first schema load can time out ("Login timeout exceeded").
      for (let attempt = 1; ; attempt++) {
        const c = spawn(join(repo, 'tools/real-nacos/start.sh'), ['2'], { env: { ...process.env, NACOS_PORT: String(port), ...(cluster === undefined ? {} : { NACOS_CLUSTER: cluster }) }, stdio: ['ignore', 'ignore', 'inherit'] })
        const [code] = (await once(c, 'exit')) as [number | null]
        if (code === 0) return
        if (attempt === 3) throw new Error(`tools/real-nacos/start.sh exited ${code}`)
      }
    },
    async close () {} // scripts/test (or whoever started it) stops it
  }
}
