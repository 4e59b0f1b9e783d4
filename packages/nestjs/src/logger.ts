// The preset logs pino-style (`warn(obj, msg)`); a Nest app reads Nest's Logger. This adapter puts
// the preset's lines in the app's log under the `FlowTag` context.
import { Logger } from '@nestjs/common'
import type { ServiceLogger } from '@flowtag/service'

/** A pino-style logger writing through Nest's `Logger` (context `FlowTag`). */
export function nestLogger (context = 'FlowTag'): ServiceLogger {
  const logger = new Logger(context)
  const line = (obj: object, msg?: string): string => {
    const fields = details(obj)
    if (msg === undefined) return fields
    return fields === '' ? msg : `${msg} ${fields}`
  }
  return {
    debug: (obj, msg) => logger.debug(line(obj, msg)),
    info: (obj, msg) => logger.log(line(obj, msg)),
    warn: (obj, msg) => logger.warn(line(obj, msg)),
    error: (obj, msg) => logger.error(line(obj, msg))
  }
}

/** The fields as JSON; an error by its message (and code), never a throw for a cycle. */
function details (obj: object): string {
  try {
    const text = JSON.stringify(obj, (_key, value: unknown) => {
      if (!(value instanceof Error)) return value
      const code = (value as { code?: unknown }).code
      return typeof code === 'string' ? `${code}: ${value.message}` : value.message
    })
    return text === undefined || text === '{}' ? '' : text
  } catch {
    return ''
  }
}
