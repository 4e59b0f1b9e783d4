// The request's lane where Nest code can reach it: `@Lane()` on a handler's parameter, and the
// injectable LaneContext for code that is not a handler (services, jobs) but runs in a flow.
import { currentFlow, currentTag, parseTag, runWithFlow, type FlowContext } from '@flowtag/context'
import { FlowTagError } from '@flowtag/errors'
import { createParamDecorator, type ExecutionContext } from '@nestjs/common'
import { errorCodes, PACKAGE } from './errors.ts'

/** The lane of a request: its `flow` (set by the preset on both platforms), else the flow the code runs in. */
export function laneOf (_data: unknown, ctx: ExecutionContext): string | undefined {
  // The request is the first handler argument on both platforms (what switchToHttp().getRequest()
  // returns, without the per-call object switchToHttp() makes).
  const request = ctx.getType() === 'http' ? ctx.getArgByIndex<{ flow?: FlowContext | null } | undefined>(0) : undefined
  return request?.flow?.tag ?? currentTag()
}

/**
 * Parameter decorator: the request's lane (`string`, e.g. `'v2'`), `undefined` when untagged.
 * In a gRPC handler (FlowTagGrpcTransport), the call's lane.
 *
 * ```ts
 * @Get(':id') find (@Param('id') id: string, @Lane() lane: string | undefined) { ... }
 * ```
 */
export const Lane = createParamDecorator(laneOf)

/**
 * The flow the code runs in, for code that is not a handler: a provider called from a request
 * reads its lane here; a job started outside any request enters one with `run()`, so its calls
 * (FlowTagHttpClient, gRPC) go to that lane.
 */
export class LaneContext {
  /** The current lane, `undefined` outside a flow or when untagged. */
  get current (): string | undefined {
    return currentTag()
  }

  /** The current flow (`tag`, `decision`, `baggage`), `undefined` outside one. */
  get flow (): FlowContext | undefined {
    return currentFlow()
  }

  /**
   * Run `fn` in `lane` (`undefined`: untagged, the stable lane), keeping the current baggage.
   * @throws {FlowTagError} `FLOWTAG_NEST_BAD_LANE` when `lane` is not 1-64 characters of [A-Za-z0-9._-].
   */
  run<T> (lane: string | undefined, fn: () => T): T {
    if (lane !== undefined && parseTag(lane) === undefined) {
      throw new FlowTagError(errorCodes.BAD_LANE, `${PACKAGE}: ${JSON.stringify(lane)} is not a lane name (1-64 characters of [A-Za-z0-9._-])`)
    }
    const baggage = currentFlow()?.baggage ?? {}
    return runWithFlow(lane === undefined ? { baggage } : { tag: lane, baggage }, fn)
  }
}
