// An Express service logs by default (Fastify's presets log through app.log; Express has no
// logger of its own): registration and draining are on the console unless a logger is given.
import express from 'express'
import t from 'tap'
import { flowTagService } from '../src/express.ts'
import { fastClient, startDev, testerRules } from './fixtures/nacos.ts'

t.test('without a logger, an Express service logs its registration and drain to the console', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const lines: string[] = []
  const original = { info: console.info, warn: console.warn, error: console.error }
  console.info = (...args: unknown[]) => { lines.push(args.join(' ')) }
  console.warn = (...args: unknown[]) => { lines.push(args.join(' ')) }
  t.teardown(() => Object.assign(console, original))

  const ft = flowTagService({ service: 'logged', version: 'v1', nacos: { serverAddr: dev.address, ...fastClient }, rules: testerRules, signals: false, registration: { drainMs: 1 } })
  const app = express()
  app.use(ft)
  await ft.listen(app, { port: 0, host: '127.0.0.1' })
  await ft.close()
  Object.assign(console, original)
  t.ok(lines.some((l) => /^\S+ INFO .*regist/i.test(l)), `a registration line among: ${JSON.stringify(lines)}`)
  t.ok(lines.some((l) => /drain|deregist/i.test(l)), 'a drain or deregistration line')
})

t.test('a given logger replaces the console', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const seen: string[] = []
  const lines: string[] = []
  const original = console.info
  console.info = (...args: unknown[]) => { lines.push(args.join(' ')) }
  t.teardown(() => { console.info = original })
  const log = (_obj: object, msg?: string) => { seen.push(msg ?? '') }
  const ft = flowTagService({ service: 'logged2', nacos: { serverAddr: dev.address, ...fastClient }, rules: testerRules, signals: false, registration: { drainMs: 1 }, logger: { debug: log, info: log, warn: log, error: log } })
  await ft.listen(express().use(ft), { port: 0, host: '127.0.0.1' })
  await ft.close()
  console.info = original
  t.ok(seen.length > 0, 'the given logger is used')
  t.same(lines, [], 'nothing on the console')
})
