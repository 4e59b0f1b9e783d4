// What Nacos 3.x answers over the HTTP v3 client API, as observed on a real server
// (tools/real-nacos `start.sh 3`, Nacos 3.1.0). Runs against NACOS3_SERVER_ADDR (host:port) or,
// when that is unset, against the embedded dev server, which must answer the same.
import t from 'tap'
import { call, json, openTarget, type Instance } from './fixtures/target.ts'
import { unique, waitFor } from '@flowtag/test-kit'

interface Wrapped<T> {
  code: number
  message: string
  data: T
}

const target = await openTarget('NACOS3_SERVER_ADDR', { compat: '3.1' })
t.teardown(() => target.close())
const B = target.base

const instances = async (serviceName: string) => {
  const a = await call('GET', `${B}/v3/client/ns/instance/list`, { query: { serviceName } })
  if (a.status !== 200) throw new Error(`v3 list answered ${a.status}: ${a.text}`)
  return json(a) as Wrapped<Instance[]>
}

t.test('v3 naming: register, heartbeat, list, deregister', async (t) => {
  const svc = unique('ct3-svc')
  const reg = await call('POST', `${B}/v3/client/ns/instance`, {
    form: { serviceName: svc, ip: '127.0.0.1', port: 9100, metadata: '{"k":"v"}' }
  })
  t.equal(reg.status, 200)
  t.same(json(reg), { code: 0, message: 'success', data: 'ok' })

  const listed = await instances(svc)
  t.equal(listed.code, 0)
  t.equal(listed.message, 'success')
  t.ok(Array.isArray(listed.data), 'data is an array of instances, not a ServiceInfo')
  t.equal(listed.data.length, 1)
  t.match(listed.data[0], {
    ip: '127.0.0.1',
    port: 9100,
    weight: 1,
    healthy: true,
    enabled: true,
    ephemeral: true,
    clusterName: 'DEFAULT',
    serviceName: `DEFAULT_GROUP@@${svc}`,
    metadata: { k: 'v' }
  })

  const beat = await call('POST', `${B}/v3/client/ns/instance`, {
    form: { serviceName: svc, ip: '127.0.0.1', port: 9100, heartBeat: true }
  })
  t.same(json(beat), { code: 0, message: 'success', data: 'ok' }, 'heartbeat of a known instance')

  const unknownBeat = await call('POST', `${B}/v3/client/ns/instance`, {
    form: { serviceName: svc, ip: '127.0.0.1', port: 9999, heartBeat: true }
  })
  t.equal(unknownBeat.status, 200, 'an unknown instance is not an HTTP error')
  t.same(json(unknownBeat), { code: 21003, message: 'instance not found', data: null })

  const del = await call('DELETE', `${B}/v3/client/ns/instance`, { query: { serviceName: svc, ip: '127.0.0.1', port: 9100 } })
  t.equal(del.status, 200)
  t.same(json(del), { code: 0, message: 'success', data: 'ok' })
  // Real Nacos applies the deregistration a moment later: poll.
  await waitFor('the instance to be gone', async () => ((await instances(svc)).data.length === 0 ? true : undefined), 20_000)
  t.pass('deregistered')
})

t.test('v3 naming: unknown service and missing serviceName', async (t) => {
  t.same(await instances(unique('ct3-none')), { code: 0, message: 'success', data: [] })
  const missing = await call('GET', `${B}/v3/client/ns/instance/list`)
  t.equal(missing.status, 400)
  t.same(json(missing), {
    code: 10000,
    message: 'parameter missing',
    data: "Required parameter 'serviceName' type String is not present"
  })
})

t.test('v3 config: read a config published over v1', async (t) => {
  const dataId = unique('ct3-cfg')
  const pub = await call('POST', `${B}/v1/cs/configs`, { form: { dataId, group: 'DEFAULT_GROUP', content: 'hello3' } })
  t.equal(pub.text, 'true', 'Nacos 3.0/3.1 keep the v1 client config API')

  const got = await waitFor('the config to be readable', async () => {
    const a = await call('GET', `${B}/v3/client/cs/config`, { query: { dataId, groupName: 'DEFAULT_GROUP' } })
    const body = json(a) as Wrapped<{ content: string } | null>
    return a.status === 200 && body.code === 0 ? body : undefined
  }, 20_000)
  t.equal(got.message, 'success')
  t.match(got.data, { content: 'hello3', contentType: 'text', md5: '7ce8be0fa3932e840f6a19c2b83e11ae' })

  const missing = await call('GET', `${B}/v3/client/cs/config`, { query: { dataId: unique('ct3-none'), groupName: 'DEFAULT_GROUP' } })
  t.equal(missing.status, 200, 'a missing config is HTTP 200 with a code')
  t.same(json(missing), { code: 20004, message: 'resource not found', data: null })

  const noGroup = await call('GET', `${B}/v3/client/cs/config`, { query: { dataId } })
  t.equal(noGroup.status, 400, 'groupName is required')
  t.ok(noGroup.text.includes("'groupName'"), `names groupName (got ${noGroup.text})`)
})
