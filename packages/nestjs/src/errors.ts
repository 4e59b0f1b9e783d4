// Coded errors of @flowtag/nestjs. Codes are stable; the README lists them. The preset's options
// keep the preset's codes (FLOWTAG_SERVICE_BAD_OPTION): one option, one error, in every framework.
import { FlowTagError, badOptionMessage } from '@flowtag/errors'

export const PACKAGE = '@flowtag/nestjs'

export const errorCodes = {
  /** A module-level option is invalid (`forRootAsync` without `useFactory`, ...); the message names it. */
  BAD_OPTION: 'FLOWTAG_NEST_BAD_OPTION',
  /** The app's HTTP adapter is neither `@nestjs/platform-express` nor `@nestjs/platform-fastify`. */
  UNSUPPORTED_PLATFORM: 'FLOWTAG_NEST_UNSUPPORTED_PLATFORM',
  /** `LaneContext.run()` was given something that is not a lane name. */
  BAD_LANE: 'FLOWTAG_NEST_BAD_LANE'
} as const

export type NestErrorCode = typeof errorCodes[keyof typeof errorCodes]

export function badNestOption (field: string, problem: string): FlowTagError {
  return new FlowTagError(errorCodes.BAD_OPTION, badOptionMessage(PACKAGE, field, problem))
}
