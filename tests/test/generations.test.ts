// What tells one Nacos generation from another, as a client probing it sees: which APIs answer,
// and whether `public` and the blank id name one config namespace (3.x) or two (2.5.0). The 2.5 facts run against
// NACOS_SERVER_ADDR (a real 2.5.0) or the dev server as 2.5, the 3.1 facts against
// NACOS3_SERVER_ADDR (a real 3.1.0) or the dev server as 3.1. Nacos 3.3's (no /v1, auth on)
// have no real server here; the dev server's own suite holds them (nacos-dev-server compat.test.ts).
import t from 'tap'
import { unique, waitFor } from '@flowtag/test-kit'
import { call, json, openTarget } from './fixtures/target.ts'

/** How a server says "not this API here" (docs: 404, 410 or 501); the dev server answers 404. */
const NOT_HERE = [404, 410, 501]

const v25 = await openTarget('NACOS_SERVER_ADDR', { compat: '2.5' })
t.teardown(() => v25.close())
const v31 = await openTarget('NACOS3_SERVER_ADDR', { compat: '3.1' })
t.teardown(() => v31.close())

t.test('2.5: the v3 client API is not there; v1 is', async (t) => {
  const list = await call('GET', `${v25.base}/v3/client/ns/instance/list`, { query: { serviceName: unique('gen') } })
  t.ok(NOT_HERE.includes(list.status), `v3 list answers "not here" (got ${list.status})`)
  if (!v25.real) t.equal(list.status, 404)
  const cfg = await call('GET', `${v25.base}/v3/client/cs/config`, { query: { dataId: 'd', groupName: 'G' } })
  t.ok(NOT_HERE.includes(cfg.status), `v3 config answers "not here" (got ${cfg.status})`)
  t.equal((await call('GET', `${v25.base}/v1/ns/instance/list`, { query: { serviceName: unique('gen') } })).status, 200)
})

t.test("2.5: a config tenant 'public' is not the blank namespace", async (t) => {
  const dataId = unique('gen-ns')
  t.equal((await call('POST', `${v25.base}/v1/cs/configs`, { form: { dataId, group: 'DEFAULT_GROUP', content: 'blank' } })).text, 'true')
  await waitFor('the blank config', async () => (await call('GET', `${v25.base}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP' } })).status === 200, 20_000)
  t.equal((await call('GET', `${v25.base}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP', tenant: 'public' } })).status, 404)
})

t.test("3.1: 'public' and the blank tenant are one config namespace over v1", async (t) => {
  const dataId = unique('gen-ns')
  t.equal((await call('POST', `${v31.base}/v1/cs/configs`, { form: { dataId, group: 'DEFAULT_GROUP', content: 'one-namespace' } })).text, 'true')
  const read = await waitFor('the config under tenant=public', async () => {
    const a = await call('GET', `${v31.base}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP', tenant: 'public' } })
    return a.status === 200 ? a : undefined
  }, 20_000)
  t.equal(read.text, 'one-namespace')
})

t.test("3.1: v1 and v3 both answer; v3 names the default namespace 'public'", async (t) => {
  const dataId = unique('gen-v3')
  t.equal((await call('POST', `${v31.base}/v1/cs/configs`, { form: { dataId, group: 'DEFAULT_GROUP', content: 'v3-reads-it' } })).text, 'true')
  for (const namespaceId of [undefined, '', 'public']) {
    const got = await waitFor(`the v3 read (namespaceId ${String(namespaceId)})`, async () => {
      const a = await call('GET', `${v31.base}/v3/client/cs/config`, { query: { dataId, groupName: 'DEFAULT_GROUP', ...(namespaceId === undefined ? {} : { namespaceId }) } })
      const body = json(a) as { code: number; data: { content: string; namespaceId?: string } | null }
      return body.code === 0 ? body : undefined
    }, 20_000)
    t.equal(got.data?.content, 'v3-reads-it', `namespaceId ${String(namespaceId)}: the same config`)
  }
})
