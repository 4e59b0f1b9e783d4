// FlowTagModule: the preset (@flowtag/service) in Nest's shape. One global module per app: the
// FlowTagService it creates is the app's, on the app's own HTTP server (Express or Fastify).
import { createFlowTagService, FlowTagService, validateServiceOptions } from '@flowtag/service'
import { Module, type DynamicModule, type Provider } from '@nestjs/common'
import { HttpAdapterHost } from '@nestjs/core'
import { FlowTagHttpClient } from './http-client.ts'
import { LaneContext } from './lane.ts'
import { FlowTagLifecycle } from './lifecycle.ts'
import { nestLogger } from './logger.ts'
import { FLOWTAG_OPTIONS, parseAsyncOptions, type FlowTagModuleAsyncOptions, type FlowTagModuleOptions } from './options.ts'
import { bindPlatform, type FlowTagPlatform } from './platform.ts'

const PLATFORM = Symbol.for('@flowtag/nestjs:platform')

/**
 * The app in lanes: registers in Nacos once it listens (deregisters, then drains, on shutdown),
 * serves `/health` and `/ready`, reads the RuleSet live, tags every request with its lane.
 * Injectable: `FlowTagService`, `FlowTagHttpClient`, `LaneContext`, and `FLOWTAG_OPTIONS`.
 */
export class FlowTagModule {
  /**
   * ```ts
   * FlowTagModule.forRoot({ service: 'order-service', version: 'v2', nacos: { serverAddr: '127.0.0.1:8848' }, rules: { dataId: 'flowtag-rules.json' } })
   * ```
   * @throws {FlowTagError} `FLOWTAG_SERVICE_BAD_OPTION` naming the field, here, before Nest starts.
   */
  static forRoot (options: FlowTagModuleOptions): DynamicModule {
    validateServiceOptions(options)
    return dynamicModule({ provide: FLOWTAG_OPTIONS, useValue: options }, [])
  }

  /**
   * ```ts
   * FlowTagModule.forRootAsync({ imports: [ConfigModule], inject: [ConfigService], useFactory: (config: ConfigService) => ({ ... }) })
   * ```
   * @throws {FlowTagError} `FLOWTAG_NEST_BAD_OPTION` for the async options themselves; the options
   * the factory makes fail Nest's start with `FLOWTAG_SERVICE_BAD_OPTION`.
   */
  static forRootAsync (options: FlowTagModuleAsyncOptions): DynamicModule {
    const o = parseAsyncOptions(options)
    return dynamicModule({ provide: FLOWTAG_OPTIONS, useFactory: o.useFactory, inject: o.inject }, o.imports as DynamicModule['imports'] & object)
  }
}
Module({})(FlowTagModule)

function dynamicModule (options: Provider, imports: NonNullable<DynamicModule['imports']>): DynamicModule {
  return {
    module: FlowTagModule,
    global: true,
    imports,
    providers: [
      options,
      {
        provide: FlowTagService,
        useFactory: (o: FlowTagModuleOptions) => createFlowTagService({ ...o, logger: o.logger ?? nestLogger() }),
        inject: [FLOWTAG_OPTIONS]
      },
      { provide: PLATFORM, useFactory: bindPlatform, inject: [{ token: HttpAdapterHost, optional: true }, FlowTagService] },
      {
        provide: FlowTagLifecycle,
        useFactory: (service: FlowTagService, host: HttpAdapterHost | undefined, platform: FlowTagPlatform) => new FlowTagLifecycle(service, host, platform),
        inject: [FlowTagService, { token: HttpAdapterHost, optional: true }, PLATFORM]
      },
      { provide: FlowTagHttpClient, useFactory: (service: FlowTagService) => new FlowTagHttpClient(service), inject: [FlowTagService] },
      { provide: LaneContext, useFactory: () => new LaneContext() }
    ],
    exports: [FLOWTAG_OPTIONS, FlowTagService, FlowTagHttpClient, LaneContext]
  }
}
