// Disk snapshots in cacheDir so a process can start, and keep routing, while Nacos is down.
// Layout: <cacheDir>/<namespace|public>/naming/<group@@service>.json, .../config/<group>/<dataId>.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Instance } from './discovery.ts'
import type { Logger } from './logger.ts'

export interface ServiceFile {
  name: string
  lastRefTime: number
  instances: Instance[]
}

const safe = (s: string): string => encodeURIComponent(s)

export class SnapshotStore {
  readonly #root: string | undefined
  readonly #logger: Logger
  #seq = 0
  /** Last write per file: writes to one file run in order, and flush() waits for all. */
  readonly #pending = new Map<string, Promise<void>>()

  constructor (cacheDir: string | undefined, namespace: string, logger: Logger) {
    this.#root = cacheDir === undefined ? undefined : join(cacheDir, safe(namespace === '' ? 'public' : namespace))
    this.#logger = logger
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
      this.#logger.warn({ err: { message: (err as Error).message }, dir }, 'nacos snapshot write failed')
    }
  }
}
