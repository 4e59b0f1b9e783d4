// The demo's logs are pino JSON lines (the demo and its tests read them): Nest's own lines go to
// the Fastify instance's pino logger too.
import type { LoggerService } from '@nestjs/common'
import type { FastifyBaseLogger } from 'fastify'

/** Nest's LoggerService over a pino logger (Nest's context as `context`). */
export function nestPino (log: FastifyBaseLogger): LoggerService {
  const at = (level: 'info' | 'warn' | 'error' | 'debug' | 'trace') => (message: unknown, ...rest: unknown[]) => {
    const context = rest.at(-1)
    log[level]({ context: typeof context === 'string' ? context : 'Nest' }, String(message))
  }
  return { log: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), verbose: at('trace'), fatal: at('error') }
}

/** Run the start-up; on failure, one line with the error's code and message, then exit 1. */
export async function startOrExit (start: () => Promise<void>): Promise<void> {
  try {
    await start()
  } catch (err) {
    const e = err as Error & { code?: string }
    console.error(`${e.code ?? 'error'}: ${e.message}`)
    process.exit(1)
  }
}
