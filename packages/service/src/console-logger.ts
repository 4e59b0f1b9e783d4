// The Express preset's default logger: Express has no logger of its own (Fastify's presets log
// through `app.log`), and a service that says nothing when it registers, drains or loses Nacos is
// hard to run. One line per event: info to stdout, warn and error to stderr; debug dropped.
import type { ServiceLogger } from './options.ts'

function line (level: string, obj: object, msg: string | undefined): string {
  const err = (obj as { err?: unknown }).err
  const fields = err instanceof Error ? { ...obj, err: { code: (err as { code?: unknown }).code, message: err.message } } : obj
  const json = Object.keys(fields).length === 0 ? '' : ` ${safeJson(fields)}`
  return `${new Date().toISOString()} ${level} ${msg ?? ''}${json}`
}

function safeJson (v: object): string {
  try {
    return JSON.stringify(v)
  } catch {
    return '[unserializable]'
  }
}

/** Logs info and above to the console (info: stdout; warn, error: stderr). */
export const consoleLogger: ServiceLogger = {
  debug () {},
  info: (obj, msg) => { console.info(line('INFO', obj, msg)) },
  warn: (obj, msg) => { console.warn(line('WARN', obj, msg)) },
  error: (obj, msg) => { console.error(line('ERROR', obj, msg)) }
}
