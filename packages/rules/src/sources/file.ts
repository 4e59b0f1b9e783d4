import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { z } from 'zod'
import { badOption, describeBadOption } from '@flowtag/errors'
import { errorCodes, RulesError } from '../errors.ts'
import type { RuleSource } from '../source.ts'

const FileSourceOptions = z.strictObject({
  debounceMs: z.int().min(0).max(60000).default(50)
})
export type FileSourceOptions = z.input<typeof FileSourceOptions>

async function readOrUndefined (path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new RulesError(errorCodes.SOURCE, `file ${path}: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * A RuleSource over a JSON file. Watches the directory (editors and `mv` replace the file,
 * which a watch on the file itself would lose), debounces bursts of events, re-reads, and
 * delivers only when the text changed. Out-of-order reads are discarded. A missing file reads
 * as "no document".
 *
 * @param options `{ debounceMs? }`: quiet time after the last event before re-reading, in
 *   milliseconds (0..60000) @default 50
 * @throws {RulesError} `FLOWTAG_RULES_BAD_OPTION` for an invalid path or option; a read error
 *   other than ENOENT reaches the store as `FLOWTAG_RULES_SOURCE`
 */
export function fileSource (path: string, options: FileSourceOptions = {}): RuleSource {
  if (typeof path !== 'string' || path.length === 0) {
    const bad = badOption('@flowtag/rules: fileSource', 'path', 'must be a non-empty string')
    throw new RulesError(errorCodes.BAD_OPTION, bad.message, bad)
  }
  const parsed = FileSourceOptions.safeParse(options)
  if (!parsed.success) {
    const bad = describeBadOption('@flowtag/rules: fileSource', parsed.error, { schema: FileSourceOptions })
    throw new RulesError(errorCodes.BAD_OPTION, bad.message, bad)
  }
  const { debounceMs } = parsed.data
  const file = resolve(path)
  const name = basename(file)
  const watchers = new Set<() => void>()

  return {
    name: `file ${file}`,
    read: () => readOrUndefined(file),
    watch (onDocument, onError) {
      let timer: NodeJS.Timeout | undefined
      let seq = 0
      let last: string | undefined | null = null // null: nothing delivered yet
      let closed = false
      const reread = () => {
        timer = undefined
        const mine = ++seq
        readOrUndefined(file).then((raw) => {
          if (closed || mine !== seq || raw === last) return
          last = raw
          onDocument(raw)
        }, (err: Error) => { if (!closed) onError(err) })
      }
      let watcher: FSWatcher
      try {
        watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
          if (changed !== null && changed !== name) return
          if (timer !== undefined) clearTimeout(timer)
          timer = setTimeout(reread, debounceMs)
        })
      } catch (err) {
        onError(new RulesError(errorCodes.SOURCE, `file ${file}: cannot watch: ${(err as Error).message}`, { cause: err }))
        return () => {}
      }
      watcher.on('error', (err) => onError(new RulesError(errorCodes.SOURCE, `file ${file}: watch failed: ${err.message}`, { cause: err })))
      const stop = () => {
        closed = true
        if (timer !== undefined) clearTimeout(timer)
        watcher.close()
        watchers.delete(stop)
      }
      watchers.add(stop)
      return stop
    },
    close () { for (const stop of [...watchers]) stop() }
  }
}
