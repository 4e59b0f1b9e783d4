// The @nestjs/terminus indicator answers what /ready answers: up once registered, down (503 from
// the user's health controller) while draining.
import { NacosClient } from '@flowtag/nacos'
import { waitFor } from '@flowtag/test-kit'
import { Controller, Get, Inject, Module } from '@nestjs/common'
import { HealthCheck, HealthCheckService } from '@nestjs/terminus'
import t from 'tap'
import { FlowTagModule, FlowTagService } from '../src/index.ts'
import { FlowTagHealthIndicator, FlowTagHealthModule } from '../src/terminus.ts'
import { method, platforms, startApp } from './fixtures/apps.ts'
import { fastClient, startDev } from './fixtures/nacos.ts'

for (const platform of platforms) {
  t.test(`${platform}: the user's terminus health controller with the flowtag indicator`, async (t) => {
    const dev = await startDev()
    t.teardown(() => dev.close())
    const admin = new NacosClient({ serverAddr: dev.address, namingProtectEmpty: false })
    t.teardown(() => admin.close())

    class HealthController {
      readonly health: HealthCheckService
      readonly flowtag: FlowTagHealthIndicator
      constructor (health: HealthCheckService, flowtag: FlowTagHealthIndicator) {
        this.health = health
        this.flowtag = flowtag
      }

      check () {
        return this.health.check([() => this.flowtag.isReady(), () => this.flowtag.isReady('lane')])
      }
    }
    Controller('healthz')(HealthController)
    Inject(HealthCheckService)(HealthController, undefined, 0)
    Inject(FlowTagHealthIndicator)(HealthController, undefined, 1)
    method(HealthController, 'check', Get(), HealthCheck())
    class App {}
    Module({
      imports: [FlowTagModule.forRoot({ service: `terminus-${platform}`, version: 'v2', nacos: { serverAddr: dev.address, ...fastClient }, cacheDir: false, registration: { drainMs: 3000 } }), FlowTagHealthModule],
      controllers: [HealthController]
    })(App)
    const { app, url } = await startApp(App, platform)

    await waitFor('registered', async () => (await admin.naming.instances(`terminus-${platform}`)).length === 1)
    await waitFor('healthy', async () => (await fetch(`${url}/healthz`)).status === 200)
    const up = await (await fetch(`${url}/healthz`)).json()
    t.match(up, { status: 'ok', info: { flowtag: { status: 'up', service: `terminus-${platform}`, version: 'v2', registered: true, draining: false }, lane: { status: 'up' } } })

    // Drained by hand (terminus answers "shutting_down" by itself once Nest's shutdown starts).
    const draining = app.get(FlowTagService).drain()
    await waitFor('draining', async () => (await fetch(`${url}/healthz`)).status === 503)
    const down = await (await fetch(`${url}/healthz`)).json()
    t.match(down, { status: 'error', error: { flowtag: { status: 'down', registered: false, draining: true } } }, 'down while draining, with the reason')
    await draining
    await app.close()
  })
}
