// The Express preset's default logger: one line per event, info to stdout, warn and error to
// stderr, debug dropped; an error is shown by its code and message; nothing it is given throws.
import t from 'tap'
import { consoleLogger } from '../src/console-logger.ts'

t.test('levels, errors and objects that cannot be serialised', async (t) => {
  const out: Array<[string, string]> = []
  const original = { info: console.info, warn: console.warn, error: console.error }
  console.info = (line: string) => { out.push(['info', line]) }
  console.warn = (line: string) => { out.push(['warn', line]) }
  console.error = (line: string) => { out.push(['error', line]) }
  t.teardown(() => Object.assign(console, original))
  const circular: Record<string, unknown> = {}
  circular.self = circular
  consoleLogger.debug({ a: 1 }, 'dropped')
  consoleLogger.info({}, 'plain')
  consoleLogger.warn({ err: Object.assign(new Error('boom'), { code: 'E_X' }) }, 'with an error')
  consoleLogger.error(circular, 'circular')
  Object.assign(console, original)
  t.equal(out.length, 3, 'debug is dropped')
  t.match(out[0], ['info', /^\d{4}-\d\d-\d\dT\S+ INFO plain$/])
  t.match(out[1], ['warn', /WARN with an error \{"err":\{"code":"E_X","message":"boom"\}\}$/])
  t.match(out[2], ['error', /ERROR circular \[unserializable\]$/])
})
