// Disk snapshots in cacheDir so a process can start, and keep routing, while Nacos is down.
// Layout: <cacheDir>/<cluster>/<namespace|public>/naming/<group@@service>.json, .../config/<group>/<dataId>,
// where <cluster> names the server list (or address server) the snapshots came from.
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Instance } from './discovery.ts'
import type { Logger } from './logger.ts'
import type { ServerAddress } from './options.ts'

export interface ServiceFile {
  name: string
  lastRefTime: number
  instances: Instance[]
}

const safe = (s: string): string => encodeURIComponent(s)

/**
 * The folder, relative to a cacheDir, of the snapshots of one Nacos cluster and namespace:
 * `<cluster>/<namespace|public>`. `<cluster>` is a file-name-safe key of the server list (order
 * does not matter, `http://` and `https://` of one host:port are one server) or of the address
 * server: the first server's `host_port`, `+n` for n more, and a hash of the whole list, e.g.
 * `10.0.0.5_8848+2-3f9a0c1b2d4e`. Two clusters or namespaces sharing a cacheDir never read each
 * other's snapshots.
 */
export function snapshotScope (where: { serverAddr?: readonly ServerAddress[] | undefined, endpoint?: ServerAddress | undefined }, namespace: string): string {
  const list = where.endpoint !== undefined ? [where.endpoint] : [...(where.serverAddr ?? [])]
  const names = list.map((a) => `${a.host.toLowerCase()}:${a.port}`).sort()
  const key = `${where.endpoint !== undefined ? 'endpoint' : 'servers'}:${names.join(',')}`
  const first = (names[0] ?? 'none').replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 64)
  const more = names.length > 1 ? `+${names.length - 1}` : ''
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 12)
  return join(`${where.endpoint !== undefined ? 'endpoint-' : ''}${first}${more}-${hash}`, safe(namespace === '' ? 'public' : namespace))
}

export class SnapshotStore {
  readonly #root: string | undefined
  readonly #logger: Logger
  #seq = 0
  /** Last write per file: writes to one file run in order, and flush() waits for all. */
  readonly #pending = new Map<string, Promise<void>>()

  /** @param root the folder of one cluster and namespace (`<cacheDir>/<snapshotScope>`); undefined: no snapshots */
  constructor (root: string | undefined, logger: Logger) {
    this.#root = root
    this.#logger = logger
  }

  /** The folder the snapshots go to, when enabled. */
  get root (): string | undefined {
    return this.#root
  }

  get enabled (): boolean {
    return this.#root !== undefined
  }

  async saveService (file: ServiceFile): Promise<void> {
    if (this.#root === undefined) return
    await this.#write(join(this.#root, 'naming'), `${safe(file.name)}.json`, JSON.stringify(file))
  }

  async loadService (name: string): Promise<ServiceFile | undefined> {
    if (this.#root === undefined) return undefined
    const text = await this.#read(join(this.#root, 'naming', `${safe(name)}.json`))
    if (text === undefined) return undefined
    try {
      const parsed = JSON.parse(text) as ServiceFile
      return Array.isArray(parsed.instances) ? parsed : undefined
    } catch {
      return undefined
    }
  }

  async loadAllServices (): Promise<ServiceFile[]> {
    if (this.#root === undefined) return []
    const names = await readdir(join(this.#root, 'naming')).catch(() => [] as string[])
    const out: ServiceFile[] = []
    for (const f of names) {
      if (!f.endsWith('.json')) continue
      const file = await this.loadService(decodeURIComponent(f.slice(0, -5)))
      if (file !== undefined) out.push(file)
    }
    return out
  }

  /** `undefined` content records "absent on the server". */
  async saveConfig (dataId: string, group: string, content: string | undefined): Promise<void> {
    if (this.#root === undefined) return
    await this.#write(join(this.#root, 'config', safe(group)), safe(dataId), JSON.stringify({ content: content ?? null }))
  }

  /** `null` = known absent, `undefined` = no snapshot. */
  async loadConfig (dataId: string, group: string): Promise<string | null | undefined> {
    if (this.#root === undefined) return undefined
    const text = await this.#read(join(this.#root, 'config', safe(group), safe(dataId)))
    if (text === undefined) return undefined
    try {
      const parsed = JSON.parse(text) as { content: string | null }
      return typeof parsed.content === 'string' ? parsed.content : null
    } catch {
      return undefined
    }
  }

  /** Wait for every snapshot write in flight. */
  async flush (): Promise<void> {
    await Promise.all(this.#pending.values())
  }

  async #read (path: string): Promise<string | undefined> {
    return readFile(path, 'utf8').catch(() => undefined)
  }

  #write (dir: string, name: string, text: string): Promise<void> {
    const path = join(dir, name)
    const next = (this.#pending.get(path) ?? Promise.resolve()).then(() => this.#writeNow(dir, name, text))
    this.#pending.set(path, next)
    void next.then(() => {
      if (this.#pending.get(path) === next) this.#pending.delete(path)
    })
    return next
  }

  // Write then rename, so a crash mid-write never leaves a torn snapshot.
  async #writeNow (dir: string, name: string, text: string): Promise<void> {
    try {
      await mkdir(dir, { recursive: true })
      const tmp = join(dir, `.${name}.${process.pid}.${++this.#seq}.tmp`)
      await writeFile(tmp, text)
      await rename(tmp, join(dir, name))
    } catch (err) {
      this.#logger.warn({ err, dir }, 'nacos snapshot write failed')
    }
  }
}
