// The preset's lane-aware `fetch` as a provider: `http://<service>/path` goes to an instance of
// that service in the current flow's lane (the preset's dispatcher), falling back to stable.
import { HttpException } from '@nestjs/common'
import { isFlowTagError } from '@flowtag/errors'
import type { FlowTagService, ServiceFetch } from '@flowtag/service'

export class FlowTagHttpClient {
  /**
   * undici `fetch` through the service's dispatcher: `await http.fetch('http://user-service/users/1')`.
   * A routing failure (no instance in the lane nor in stable, every instance ejected, an unknown
   * service) rejects with an `HttpException` of its status (503) whose body is
   * `{ statusCode, code, message }` (`code`: the flowtag error's, e.g.
   * `FLOWTAG_OUTBOUND_NO_INSTANCE_IN_LANE`) and whose `cause` is the flowtag error: unhandled, Nest
   * answers 503 with the code, not a bare 500. Other failures reject as undici's `fetch` does.
   */
  readonly fetch: ServiceFetch
  /** The undici dispatcher, for undici's `request()` / `stream()` (`{ dispatcher }`). */
  readonly dispatcher: FlowTagService['dispatcher']

  constructor (service: FlowTagService) {
    const fetch = service.fetch
    this.fetch = (async (...args: Parameters<ServiceFetch>) => {
      try {
        return await fetch(...args)
      } catch (err) {
        if (isFlowTagError(err) && typeof err.statusCode === 'number') {
          throw new HttpException({ statusCode: err.statusCode, code: err.code, message: err.message }, err.statusCode, { cause: err })
        }
        throw err
      }
    }) as ServiceFetch
    this.dispatcher = service.dispatcher
  }
}
