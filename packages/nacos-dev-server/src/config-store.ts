import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { DevServerError, errorCodes } from './errors.ts'

export interface ConfigItem {
  tenant: string
  group: string
  dataId: string
  content: string
  md5: string
  type: string
  lastModified: number
}

export const CONFIG_TYPES = new Set(['text', 'json', 'xml', 'yaml', 'html', 'properties', 'toml'])

export const md5 = (content: string) => createHash('md5').update(content, 'utf8').digest('hex')

/**
 * The stored namespace of a config for the namespace id a client sent. Nacos 3 treats `public` as
 * the default namespace, stored blank; Nacos 2.5.0 keeps a config tenant `public` apart from the
 * blank one (checked on a real 2.5.0: published blank, `tenant=public` reads 404).
 */
export const configTenant = (sent: string, compat: string): string => (sent === 'public' && compat !== '2.5' ? '' : sent)

/** One key of a config: tenant, group and dataId joined by a separator none of them may contain. */
export const configKey = (tenant: string, group: string, dataId: string) => `${tenant}\u0002${group}\u0002${dataId}`

/**
 * Configs by tenant, group and dataId, with Nacos's md5; emits 'change' with the key on publish
 * and delete. With a file, every change is written through (atomically, by rename).
 */
export class ConfigStore extends EventEmitter<{ change: [string] }> {
  readonly #items = new Map<string, ConfigItem>()
  readonly #file: string | undefined

  constructor (file?: string) {
    super()
    this.#file = file
    if (file !== undefined) this.#load(file)
  }

  get (tenant: string, group: string, dataId: string): ConfigItem | undefined {
    return this.#items.get(configKey(tenant, group, dataId))
  }

  md5Of (key: string): string {
    return this.#items.get(key)?.md5 ?? ''
  }

  publish (tenant: string, group: string, dataId: string, content: string, type: string): void {
    const key = configKey(tenant, group, dataId)
    const prev = this.#items.get(key)
    const hash = md5(content)
    this.#items.set(key, { tenant, group, dataId, content, md5: hash, type, lastModified: Date.now() })
    this.#save()
    if (prev?.md5 !== hash) this.emit('change', key)
  }

  remove (tenant: string, group: string, dataId: string): void {
    const key = configKey(tenant, group, dataId)
    if (!this.#items.delete(key)) return
    this.#save()
    this.emit('change', key)
  }

  size (): number {
    return this.#items.size
  }

  #load (file: string): void {
    let raw: string
    try {
      raw = readFileSync(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw new DevServerError(errorCodes.DATA_FILE, `cannot read data file ${file}: ${(err as Error).message}`, { cause: err })
    }
    let doc: { configs?: ConfigItem[] }
    try {
      doc = JSON.parse(raw) as { configs?: ConfigItem[] }
    } catch (err) {
      throw new DevServerError(errorCodes.DATA_FILE, `data file ${file} is not JSON: ${(err as Error).message}`, { cause: err })
    }
    for (const c of doc.configs ?? []) {
      if (typeof c?.content !== 'string' || typeof c.dataId !== 'string' || typeof c.group !== 'string') continue
      const tenant = typeof c.tenant === 'string' ? c.tenant : ''
      const type = CONFIG_TYPES.has(c.type) ? c.type : 'text'
      this.#items.set(configKey(tenant, c.group, c.dataId), { ...c, tenant, type, md5: md5(c.content) })
    }
  }

  #save (): void {
    if (this.#file === undefined) return
    const tmp = `${this.#file}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify({ configs: [...this.#items.values()] }, null, 1))
    renameSync(tmp, this.#file)
  }
}
