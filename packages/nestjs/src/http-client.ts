// The preset's lane-aware `fetch` as a provider: `http://<service>/path` goes to an instance of
// that service in the current flow's lane (the preset's dispatcher), falling back to stable.
import type { FlowTagService, ServiceFetch } from '@flowtag/service'

export class FlowTagHttpClient {
  /**
   * undici `fetch` through the service's dispatcher: `await http.fetch('http://user-service/users/1')`.
   * A routing failure rejects with `TypeError('fetch failed')` whose `cause` is the `OutboundError`.
   */
  readonly fetch: ServiceFetch
  /** The undici dispatcher, for undici's `request()` / `stream()` (`{ dispatcher }`). */
  readonly dispatcher: FlowTagService['dispatcher']

  constructor (service: FlowTagService) {
    this.fetch = service.fetch
    this.dispatcher = service.dispatcher
  }
}
