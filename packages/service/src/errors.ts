// Coded errors of @flowtag/service. Codes are stable; the README lists them.
import { FlowTagError, badOption } from '@flowtag/errors'

export const PACKAGE = '@flowtag/service'

export const errorCodes = {
  /** An option is invalid; the message names the field (`nacos.serverAddr`, `rules.dataId`, `mode`). */
  BAD_OPTION: 'FLOWTAG_SERVICE_BAD_OPTION',
  /** The service was closed: it cannot listen or attach again. */
  CLOSED: 'FLOWTAG_SERVICE_CLOSED'
} as const

export type ServiceErrorCode = typeof errorCodes[keyof typeof errorCodes]

/** `FLOWTAG_SERVICE_BAD_OPTION` naming `field` (message and data: `field`, `path`, `problem`). */
export function badServiceOption (field: string, problem: string, cause?: unknown, path?: Array<string | number>): FlowTagError {
  const bad = badOption(PACKAGE, field, problem, path)
  return new FlowTagError(errorCodes.BAD_OPTION, bad.message, { ...bad, cause })
}

/**
 * The error of a composed package's constructor (its own bad-option error) as ours, with the
 * field named as our user wrote it: `nacos.serverAddr`, not `serverAddr`. Any other error, or a
 * bad-option error that does not carry its field, is returned as it is.
 */
export function asServiceOption (err: unknown, prefix: string): unknown {
  if (!(err instanceof FlowTagError) || !err.code.endsWith('_BAD_OPTION') || err.field === undefined) return err
  const path = [...(prefix === '' ? [] : [prefix]), ...(err.path ?? [err.field])]
  return badServiceOption(path.join('.'), err.problem ?? err.message, err, path)
}
