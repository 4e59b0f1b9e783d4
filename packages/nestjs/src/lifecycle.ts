// The service's lifecycle on Nest's hooks: wait for the rules (and Nacos, with failFast) during
// bootstrap, register once the HTTP server listens, deregister and drain in
// beforeApplicationShutdown (the server still serves), close in onApplicationShutdown (after Nest
// has stopped the server). `app.enableShutdownHooks()` runs the same hooks on SIGTERM.
import type { Server } from 'node:net'
import type { FlowTagService } from '@flowtag/service'
import type { BeforeApplicationShutdown, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common'
import type { HttpAdapterHost } from '@nestjs/core'
import type { FlowTagPlatform } from './platform.ts'

export class FlowTagLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  readonly #service: FlowTagService
  readonly #host: HttpAdapterHost | undefined
  readonly #platform: FlowTagPlatform
  #unlisten: (() => void) | undefined

  constructor (service: FlowTagService, host: HttpAdapterHost | undefined, platform: FlowTagPlatform) {
    this.#service = service
    this.#host = host
    this.#platform = platform
  }

  /** Rules (and the failFast check) before the app listens: `app.listen()` / `app.init()` rejects on failure. */
  async onApplicationBootstrap (): Promise<void> {
    const service = this.#service
    await service.prepare()
    const server = this.#platform === 'none' ? undefined : (this.#host?.httpAdapter?.getHttpServer() as Server | undefined)
    if (server === undefined) {
      if (service.registration !== undefined) service.logger.warn({ service: service.name }, 'flowtag: the app has no HTTP server, so nothing registers in Nacos; set registration: false (a gRPC microservice registers through FlowTagGrpcServer)')
      return
    }
    const start = (): void => {
      const address = server.address()
      service.start(typeof address === 'object' && address !== null ? address : undefined)
        .catch((err: unknown) => service.logger.error({ err, service: service.name }, 'flowtag: registration failed'))
    }
    if (server.listening) {
      start()
      return
    }
    server.once('listening', start)
    this.#unlisten = () => server.off('listening', start)
  }

  /** Deregister, report not ready, keep serving `registration.drainMs`: the server is still open here. */
  async beforeApplicationShutdown (): Promise<void> {
    this.#unlisten?.()
    await this.#service.drain()
  }

  /** After Nest stopped the server: outbound, rules, the Nacos client (each only if the service made it). */
  async onApplicationShutdown (): Promise<void> {
    await this.#service.close()
  }
}
