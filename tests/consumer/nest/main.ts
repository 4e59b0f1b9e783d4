// A Nest app as a user writes it: decorator syntax, constructor injection by type
// (emitDecoratorMetadata), compiled by tsc (to ESM or, in a CommonJS project, to require()s). `node dist/main.js <edge|catalog> <express|fastify> [lane]`.
import 'reflect-metadata'
import { Controller, Get, Headers, Injectable, Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { FlowTagHttpClient, FlowTagModule, FlowTagService, Lane, LaneContext, type FlowTagModuleOptions } from '@flowtag/nestjs'

const [role = 'catalog', platform = 'express', lane = 'v1'] = process.argv.slice(2)
const nacos = { serverAddr: process.env.NACOS_SERVER_ADDR ?? '127.0.0.1:8848' }

@Injectable()
class WhoAmI {
  constructor (private readonly lanes: LaneContext) {}

  async lane (): Promise<string | null> {
    await new Promise((resolve) => setTimeout(resolve, 1))
    return this.lanes.current ?? null
  }
}

@Controller()
class CatalogController {
  constructor (private readonly who: WhoAmI) {}

  @Get('item')
  async item (@Lane() tag: string | undefined, @Headers('x-flow-tag') header?: string) {
    return { servedBy: lane, tag: tag ?? null, inProvider: await this.who.lane(), header: header ?? null }
  }
}

@Controller()
class EdgeController {
  constructor (private readonly http: FlowTagHttpClient, private readonly flowtag: FlowTagService) {}

  @Get('call')
  async call (@Lane() tag: string | undefined) {
    const res = await this.http.fetch('http://catalog/item')
    return { edgeLane: tag ?? null, rulesVersion: this.flowtag.rules?.version ?? null, upstream: await res.json() }
  }
}

const options: FlowTagModuleOptions = role === 'edge'
  ? { service: 'gateway', mode: 'edge', nacos, rules: { dataId: 'flowtag-rules.json' }, registration: false, cacheDir: false }
  : { service: 'catalog', version: lane, nacos, registration: { drainMs: 200 }, cacheDir: false }

@Module({
  imports: [FlowTagModule.forRoot(options)],
  controllers: [role === 'edge' ? EdgeController : CatalogController],
  providers: [WhoAmI]
})
class AppModule {}

// No top-level await: the same file compiles to ESM (Nest 12 project) and CommonJS (Nest 11 project).
async function bootstrap (): Promise<void> {
  const app = await NestFactory.create(AppModule, platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(), { logger: ['error', 'warn'] })
  app.enableShutdownHooks()
  await app.listen(0, '127.0.0.1')
  process.send?.({ port: (app.getHttpServer().address() as { port: number }).port })
}
void bootstrap()
