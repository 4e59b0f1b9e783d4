// The data file and options at start: refused with a coded error, or read with bad entries skipped.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startNacosDevServer } from '../src/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'devserver-data-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('a data file that is not JSON is refused with FLOWTAG_DEVSERVER_DATA_FILE', async (t) => {
  const file = join(dir, 'broken.json')
  writeFileSync(file, '{ not json')
  await t.rejects(startNacosDevServer({ port: 0, dataFile: file }), { code: 'FLOWTAG_DEVSERVER_DATA_FILE', message: /is not JSON/ })
})

t.test('entries of a data file that are not configs are skipped; the rest is served', async (t) => {
  const file = join(dir, 'mixed.json')
  writeFileSync(file, JSON.stringify({ configs: [null, { dataId: 1, group: 'G', content: 'x' }, { dataId: 'd', group: 'G', content: 'kept' }, { dataId: 'e', group: 'G' }] }))
  const server = await startNacosDevServer({ port: 0, dataFile: file })
  t.teardown(() => server.close())
  const kept = await fetch(`${server.url}/nacos/v1/cs/configs?dataId=d&group=G`)
  t.equal(await kept.text(), 'kept')
  const missing = await fetch(`${server.url}/nacos/v1/cs/configs?dataId=e&group=G`)
  t.equal(missing.status, 404, 'an entry without content is skipped')
  await missing.body?.cancel()
})

t.test('bad options are refused naming the field', async (t) => {
  await t.rejects(startNacosDevServer({ port: -1 }), { code: 'FLOWTAG_DEVSERVER_BAD_OPTION', message: /invalid option "port"/ })
  await t.rejects(startNacosDevServer({ heartbeat: { intervalMs: 0 } }), { code: 'FLOWTAG_DEVSERVER_BAD_OPTION', message: /heartbeat\.intervalMs/ })
  await t.rejects(startNacosDevServer({ port: 0, host: '' }), { code: 'FLOWTAG_DEVSERVER_BAD_OPTION', message: /invalid option "host"/ })
})
