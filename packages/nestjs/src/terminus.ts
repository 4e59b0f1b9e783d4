// @flowtag/nestjs/terminus: the readiness the preset serves at /ready, as a @nestjs/terminus
// health indicator, for apps that already have a health controller.
import { FlowTagService } from '@flowtag/service'
import { Module } from '@nestjs/common'
import { HealthIndicatorService, TerminusModule, type HealthIndicatorResult } from '@nestjs/terminus'

/** The indicator's details: who, and why it is (not) ready. */
export type FlowTagHealthDetails = {
  service: string
  version: string | null
  registered: boolean
  draining: boolean
}

export class FlowTagHealthIndicator {
  readonly #service: FlowTagService
  readonly #indicators: HealthIndicatorService

  constructor (service: FlowTagService, indicators: HealthIndicatorService) {
    this.#service = service
    this.#indicators = indicators
  }

  /**
   * Up when registered in Nacos (or not registering) and not draining, as `/ready` answers 200;
   * down otherwise (terminus's `HealthCheckService.check()` then answers 503).
   *
   * ```ts
   * @Get('health') @HealthCheck() check () { return this.health.check([() => this.flowtag.isReady()]) }
   * ```
   * @param key the key of the result. @default 'flowtag'
   */
  isReady<const K extends string = 'flowtag'> (key: K = 'flowtag' as K): HealthIndicatorResult<K, 'up' | 'down', FlowTagHealthDetails> {
    const session = this.#indicators.check(key)
    const s = this.#service
    const details: FlowTagHealthDetails = { service: s.name, version: s.version ?? null, registered: s.registration?.registered ?? false, draining: s.draining }
    return s.ready ? session.up(details) : session.down(details)
  }
}

/** Import next to FlowTagModule: provides FlowTagHealthIndicator, and re-exports TerminusModule (HealthCheckService). */
export class FlowTagHealthModule {}
Module({
  imports: [TerminusModule],
  providers: [{ provide: FlowTagHealthIndicator, useFactory: (s: FlowTagService, i: HealthIndicatorService) => new FlowTagHealthIndicator(s, i), inject: [FlowTagService, HealthIndicatorService] }],
  exports: [FlowTagHealthIndicator, TerminusModule]
})(FlowTagHealthModule)
