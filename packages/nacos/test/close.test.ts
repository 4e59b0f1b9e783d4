import { fileURLToPath } from 'node:url'
import t from 'tap'
import { exitOf, startNode } from '@flowtag/test-kit'
import { NacosClient } from '../src/index.ts'
import { startDev } from './fixtures/target.ts'

const child = fileURLToPath(new URL('./fixtures/close-child.ts', import.meta.url))

for (const transport of ['http-v1', 'http-v3', 'grpc'] as const) {
  t.test(`${transport}: after close() the process exits by itself`, async (t) => {
    const dev = await startDev()
    t.teardown(() => dev.close())
    // Under the test's own Node options (test-kit), so the child's coverage merges with the test's.
    const proc = startNode(t, child, { env: { NACOS_ADDR: `127.0.0.1:${dev.port}`, NACOS_TRANSPORT: transport } })
    let out = ''
    proc.stdout!.on('data', (d) => (out += d))
    proc.stderr!.on('data', (d) => (out += d))
    // Generous bound: a leaked handle keeps the child alive indefinitely (beats, polls every 100 ms).
    const exit = await exitOf(proc, `the ${transport} child after close()`, 30_000).catch((err: Error) => err.message)
    t.same(exit, { code: 0, signal: null }, out)
    t.match(out, 'closed')
  })
}

t.test('close is idempotent and later calls fail with FLOWTAG_NACOS_CLOSED', async (t) => {
  const dev = await startDev()
  t.teardown(() => dev.close())
  const c = new NacosClient({ serverAddr: `127.0.0.1:${dev.port}` })
  await c.config.get('x', 'G')
  await Promise.all([c.close(), c.close()])
  await t.rejects(c.config.get('x', 'G'), { code: 'FLOWTAG_NACOS_CLOSED' })
  await t.rejects(c.naming.register('s', { ip: '127.0.0.1', port: 1 }), { code: 'FLOWTAG_NACOS_CLOSED' })
  t.throws(() => c.config.listen('x', 'G', () => {}), { code: 'FLOWTAG_NACOS_CLOSED' })
  t.throws(() => c.naming.subscribe('s', () => {}), { code: 'FLOWTAG_NACOS_CLOSED' })
})
