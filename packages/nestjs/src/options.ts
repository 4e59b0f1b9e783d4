// The module's options: the preset's own (@flowtag/service, validated by its zod schema with its
// coded errors), given at once (`forRoot`) or made by a factory with injected providers
// (`forRootAsync`, e.g. from @nestjs/config's ConfigService).
import type { FlowTagServiceOptions } from '@flowtag/service'
import type { DynamicModule, ForwardReference, InjectionToken, OptionalFactoryDependency, Type } from '@nestjs/common'
import { z } from 'zod'
import { badNestOption } from './errors.ts'

/** Injection token of the module's options (as given to `forRoot`, or as the factory made them). */
export const FLOWTAG_OPTIONS = Symbol.for('@flowtag/nestjs:options')

/**
 * The options of `FlowTagModule.forRoot()`: those of @flowtag/service's presets (`service`,
 * `nacos`, `rules`, `mode`, `version`, `registration`, ...). `logger` defaults to Nest's
 * `Logger` (context `FlowTag`).
 */
export type FlowTagModuleOptions = FlowTagServiceOptions

/** `FlowTagModule.forRootAsync()`: Nest's usual async-options shape. */
export interface FlowTagModuleAsyncOptions {
  /** Makes the options; its arguments are the providers named in `inject`, in order. */
  useFactory: (...args: any[]) => FlowTagModuleOptions | Promise<FlowTagModuleOptions> // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Providers handed to `useFactory` (e.g. `[ConfigService]`). @default [] */
  inject?: Array<InjectionToken | OptionalFactoryDependency>
  /** Modules that export those providers (e.g. `[ConfigModule]`). @default [] */
  imports?: Array<Type<unknown> | DynamicModule | Promise<DynamicModule> | ForwardReference>
}

const token = z.custom<InjectionToken | OptionalFactoryDependency>((v) => typeof v === 'function' || typeof v === 'string' || typeof v === 'symbol' || (typeof v === 'object' && v !== null), 'expected an injection token (a class, string or symbol) or { token, optional }')
const moduleRef = z.custom<Type<unknown> | DynamicModule>((v) => typeof v === 'function' || (typeof v === 'object' && v !== null), 'expected a module (a class, a dynamic module, a promise of one or a forwardRef)')

const asyncOptionsSchema = z.strictObject({
  useFactory: z.custom<FlowTagModuleAsyncOptions['useFactory']>((v) => typeof v === 'function', 'expected a function that returns the options'),
  inject: z.array(token).default([]),
  imports: z.array(moduleRef).default([])
})

/**
 * @throws {FlowTagError} `FLOWTAG_NEST_BAD_OPTION` naming the field (`useFactory`, `inject.0`, an unknown key).
 */
export function parseAsyncOptions (input: unknown): z.output<typeof asyncOptionsSchema> {
  const result = asyncOptionsSchema.safeParse(input ?? {})
  if (result.success) return result.data
  const issue = result.error.issues.find((i) => i.code === 'unrecognized_keys') ?? result.error.issues[0]!
  const path = issue.path.map(String)
  if (issue.code === 'unrecognized_keys') return badNestOptionThrow([...path, issue.keys[0]!].join('.'), 'unknown key of forRootAsync (its keys: useFactory, inject, imports)')
  return badNestOptionThrow(path.length === 0 ? 'options' : path.join('.'), issue.message)
}

function badNestOptionThrow (field: string, problem: string): never {
  throw badNestOption(field, problem)
}
