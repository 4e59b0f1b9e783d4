// What the benchmark scripts share: medians, the machine and load lines of a report, the command
// line, a child's first line, and writing a part of BENCHMARKS.md in place.
import type { ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'

/** The middle value of `xs` (the mean of the two middle ones for an even count); NaN for none. */
export function median (xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** The 1, 5 and 15 minute load averages, one decimal each: `3.4 / 5.9 / 5.0`. */
export function loadAverage (averages: readonly number[] = loadavg()): string {
  return averages.map((x) => x.toFixed(1)).join(' / ')
}

/** This Node and machine for a report: `Node v24.21.0, 2 CPUs (Intel(R) Xeon(R) Processor)`. */
export function machine (): string {
  const list = cpus()
  return `Node ${process.version}, ${list.length} CPUs (${list[0]?.model.trim() ?? 'unknown'})`
}

/** The number after `name` on the command line (`--rounds 8`), or `fallback` when `name` is absent. */
export function numberArg (name: string, fallback: number, argv: readonly string[] = process.argv): number {
  const i = argv.indexOf(name)
  return i === -1 ? fallback : Number(argv[i + 1])
}

/**
 * The first line `child` prints on stdout that starts with `prefix` (`LISTENING 40123`).
 * Rejects when the child exits before printing it. The child's stdout must be a pipe.
 */
export function firstLine (child: ChildProcess, prefix: string): Promise<string> {
  const out = child.stdout
  if (out === null) return Promise.reject(new Error('firstLine: the child\'s stdout is not a pipe'))
  return new Promise((resolve, reject) => {
    let buf = ''
    const onExit = (code: number | null): void => { reject(new Error(`child exited (${code}) before printing ${prefix}`)) }
    const onData = (d: Buffer): void => {
      buf += String(d)
      const line = buf.split('\n').find((l) => l.startsWith(prefix))
      if (line === undefined) return
      out.off('data', onData)
      child.off('exit', onExit)
      resolve(line)
    }
    out.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Where a part of a markdown document starts and ends. */
export interface SectionPlace {
  /** The part's first characters: its heading (`## Soak: ...`) or bold lead (`**Gateway hop.**`). */
  start: string
  /** Where a part ends besides the next `## ` heading, e.g. the next bold lead `**Pick cost**`. */
  until?: readonly string[]
  /** When the part is absent: put it after the section that starts with this, instead of at the end. */
  nextTo?: string
}

/**
 * `text` with the part at `place` replaced by `section` (or added), one blank line around it.
 * The part runs from `place.start` to the next `## ` heading or `place.until` mark, or the end.
 */
export function replaceSection (text: string, section: string, place: SectionPlace): string {
  const body = section.replace(/\n*$/, '')
  const endOf = (from: number): number => {
    const ends = ['\n## ', ...(place.until ?? []).map((u) => `\n${u}`)].map((m) => text.indexOf(m, from)).filter((i) => i !== -1)
    return ends.length === 0 ? -1 : Math.min(...ends) + 1
  }
  const put = (before: string, after: string): string => `${before === '' ? '' : before.replace(/\n*$/, '\n\n')}${body}\n${after === '' ? '' : `\n${after}`}`
  const at = text.indexOf(place.start)
  if (at !== -1) {
    const end = endOf(at + place.start.length)
    return put(text.slice(0, at), end === -1 ? '' : text.slice(end))
  }
  const sibling = place.nextTo === undefined ? -1 : text.indexOf(place.nextTo)
  if (sibling === -1) return put(text, '')
  const end = endOf(sibling + (place.nextTo as string).length)
  return end === -1 ? put(text, '') : put(text.slice(0, end), text.slice(end))
}

/**
 * Write `section` into the markdown file at `place` (see {@link replaceSection}); a file that does
 * not exist yet starts as `# Benchmarks`.
 */
export async function writeSection (file: string, section: string, place: SectionPlace): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => '# Benchmarks\n')
  await writeFile(file, replaceSection(text, section, place))
}
