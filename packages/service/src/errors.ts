// Coded errors of @flowtag/service. Codes are stable; the README lists them.
import { FlowtagError, badOptionMessage } from '@flowtag/errors'

export const PACKAGE = '@flowtag/service'

export const errorCodes = {
  /** An option is invalid; the message names the field (`nacos.serverAddr`, `rules.dataId`, `mode`). */
  BAD_OPTION: 'FLOWTAG_SERVICE_BAD_OPTION',
  /** The service was closed: it cannot listen or attach again. */
  CLOSED: 'FLOWTAG_SERVICE_CLOSED'
} as const

export type ServiceErrorCode = typeof errorCodes[keyof typeof errorCodes]

export function badServiceOption (field: string, problem: string, cause?: unknown): FlowtagError {
  return new FlowtagError(errorCodes.BAD_OPTION, badOptionMessage(PACKAGE, field, problem), { cause })
}

/**
 * The error of a composed package's constructor (its own bad-option error) as ours, with the
 * field named as our user wrote it: `nacos.serverAddr`, not `serverAddr`. Any other error, or a
 * bad-option error not worded the shared way, is returned as it is.
 */
export function asServiceOption (err: unknown, prefix: string): unknown {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string' || !code.endsWith('_BAD_OPTION')) return err
  const message = (err as Error).message
  // Every package words it the same way (@flowtag/errors): `<pkg>: invalid option "<field>": <problem>`.
  const named = /invalid option "([^"]+)": ([\s\S]*)$/.exec(message)
  if (named === null) return err
  return badServiceOption(join(prefix, named[1] as string), named[2] as string, err)
}

function join (prefix: string, field: string): string {
  return prefix === '' ? field : `${prefix}.${field}`
}
