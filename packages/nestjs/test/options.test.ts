// Bad options get the presets' coded errors, naming the field: at forRoot() before Nest starts,
// and from Nest's start for options a forRootAsync factory makes.
import { FlowTagError } from '@flowtag/errors'
import { ConfigModule, ConfigService } from '@nestjs/config'
import { Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import t from 'tap'
import { FLOWTAG_OPTIONS, FlowTagModule, FlowTagService, errorCodes } from '../src/index.ts'
import { nestLogger } from '../src/logger.ts'
import { startApp, usersModule } from './fixtures/apps.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

const nacos = { serverAddr: '127.0.0.1:1' }

t.test('forRoot: the preset\'s validation, before Nest starts', async (t) => {
  const cases: Array<[string, object, RegExp]> = [
    ['no service', { nacos }, /invalid option "service"/],
    ['edge without rules', { service: 'gw', mode: 'edge', nacos }, /invalid option "rules"/],
    ['bad lane', { service: 's', version: 'v 2', nacos }, /invalid option "version"/],
    ['bad drainMs', { service: 's', nacos, registration: { drainMs: -1 } }, /invalid option "registration.drainMs"/],
    ['unknown key', { service: 's', nacos, sevice: 'typo' }, /invalid option "sevice"/]
  ]
  for (const [what, options, message] of cases) {
    const err = (() => { try { FlowTagModule.forRoot(options as never) } catch (e) { return e } })()
    t.ok(err instanceof FlowTagError, `${what}: a FlowTagError`)
    t.match(err, { code: 'FLOWTAG_SERVICE_BAD_OPTION', message }, what)
  }
})

t.test('forRootAsync: its own shape is checked at once', async (t) => {
  t.throws(() => FlowTagModule.forRootAsync({} as never), { code: errorCodes.BAD_OPTION, message: /invalid option "useFactory": expected a function/ })
  t.throws(() => FlowTagModule.forRootAsync(undefined as never), { code: 'FLOWTAG_NEST_BAD_OPTION', message: /"useFactory"/ })
  t.throws(() => FlowTagModule.forRootAsync({ useFactory: () => ({}) as never, injects: [] } as never), { code: 'FLOWTAG_NEST_BAD_OPTION', message: /invalid option "injects": unknown key/ })
  t.throws(() => FlowTagModule.forRootAsync({ useFactory: () => ({}) as never, inject: [42] } as never), { code: 'FLOWTAG_NEST_BAD_OPTION', message: /invalid option "inject.0": expected an injection token/ })
  t.throws(() => FlowTagModule.forRootAsync({ useFactory: () => ({}) as never, imports: [null] } as never), { code: 'FLOWTAG_NEST_BAD_OPTION', message: /invalid option "imports.0"/ })
})

t.test('forRootAsync: options from ConfigService; bad ones fail Nest\'s start with the preset\'s error', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const env = { FLOWTAG_SERVICE: 'configured', NACOS_ADDR: dev.address }
  const flowtag = (serverAddr: (c: ConfigService) => string) => FlowTagModule.forRootAsync({
    imports: [ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => env] })],
    inject: [ConfigService],
    useFactory: (config: ConfigService) => ({ service: config.getOrThrow<string>('FLOWTAG_SERVICE'), version: 'v3', nacos: { serverAddr: serverAddr(config), ...fastClient }, cacheDir: false })
  })
  const { app } = await startApp(usersModule('v3', flowtag((c) => c.getOrThrow('NACOS_ADDR'))), 'fastify')
  t.teardown(() => app.close())
  t.equal(app.get(FlowTagService).name, 'configured', 'the factory\'s options are in force')
  t.match(app.get(FLOWTAG_OPTIONS), { service: 'configured', version: 'v3' })

  await t.rejects(NestFactory.create(usersModule('v3', flowtag(() => 'not a host:port:1')), new ExpressAdapter(), { logger: false, abortOnError: false }),
    { code: 'FLOWTAG_SERVICE_BAD_OPTION', message: /invalid option "nacos.serverAddr"/ })
})

t.test('an HTTP adapter other than Express and Fastify is refused by name', async (t) => {
  class OtherAdapter extends ExpressAdapter {
    override getType (): string { return 'koa' }
  }
  class App {}
  Module({ imports: [FlowTagModule.forRoot({ service: 's', nacos, cacheDir: false, registration: false })] })(App)
  await t.rejects(NestFactory.create(App, new OtherAdapter(), { logger: false, abortOnError: false }), { code: 'FLOWTAG_NEST_UNSUPPORTED_PLATFORM', message: /"koa" is not supported/ })
})

t.test('FlowTagModule imported twice with other options: refused by name on both platforms', async (t) => {
  for (const platform of ['express', 'fastify'] as const) {
    class Feature {}
    Module({ imports: [FlowTagModule.forRoot({ service: 'feature-svc', nacos, cacheDir: false, registration: false })] })(Feature)
    class App {}
    Module({ imports: [FlowTagModule.forRoot({ service: 'root-svc', nacos, cacheDir: false, registration: false }), Feature] })(App)
    const { FastifyAdapter } = await import('@nestjs/platform-fastify')
    const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter()
    await t.rejects(NestFactory.create(App, adapter, { logger: false, abortOnError: false }),
      { code: errorCodes.BAD_OPTION, message: /invalid option "forRoot": FlowTagModule is imported more than once in this app \(service "(root|feature)-svc", then "(root|feature)-svc"\)/ }, platform)
  }
})

t.test('the default logger writes the preset\'s lines through Nest\'s Logger', async (t) => {
  const { ConsoleLogger, Logger } = await import('@nestjs/common')
  const lines: string[] = []
  Logger.overrideLogger({ log: (m: string) => lines.push(`log ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`), debug: (m: string) => lines.push(`debug ${m}`) } as never)
  t.teardown(() => Logger.overrideLogger(new ConsoleLogger()))
  const log = nestLogger()
  log.info({ service: 's' }, 'registered')
  log.warn({ err: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) }, 'retrying')
  log.error({}, 'failed')
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  log.debug(cyclic, 'cyclic')
  log.info({ n: 1 })
  log.info({ toJSON: () => undefined }, 'nothing to show')
  t.same(lines, ['log registered {"service":"s"}', 'warn retrying {"err":"ECONNREFUSED: refused"}', 'error failed', 'debug cyclic', 'log {"n":1}', 'log nothing to show'])
})
