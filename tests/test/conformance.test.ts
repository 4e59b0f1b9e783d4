// What Nacos 2.x answers over the HTTP v1 client API, as observed on a real server
// (tools/real-nacos, Nacos 2.5.0). Runs against NACOS_SERVER_ADDR (a real Nacos, host:port)
// or, when that is unset, against the embedded dev server as 2.5 (NACOS_DEV_COMPAT=3.1 checks
// that the default 3.1 mode answers the v1 API the same), which must answer the same.
// Auth-on facts run against NACOS_AUTH_SERVER_ADDR, or a dev server with auth when no real
// server is given.
import { createHash } from 'node:crypto'
import t from 'tap'
import { call, json, openTarget, type ServiceInfo, type Target } from './fixtures/target.ts'
import { unique, waitFor } from '@flowtag/test-kit'

const target: Target = await openTarget('NACOS_SERVER_ADDR', { compat: '2.5' })
t.teardown(() => target.close())
const B = target.base
const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex')

const list = async (query: Record<string, string | number | boolean>) => {
  const a = await call('GET', `${B}/v1/ns/instance/list`, { query })
  if (a.status !== 200) throw new Error(`list answered ${a.status}: ${a.text}`)
  return json(a) as ServiceInfo
}
/**
 * Register, then wait until the instance is listed: a real Nacos applies registrations
 * asynchronously, so a list right after `ok` may not show it yet. Disabled instances are
 * never listed, so those are not waited for.
 */
const register = async (form: Record<string, string | number | boolean>) => {
  const answer = await call('POST', `${B}/v1/ns/instance`, { form })
  if (answer.status !== 200 || form.enabled === false) return answer
  const where: Record<string, string | number | boolean> = { serviceName: form.serviceName! }
  for (const k of ['namespaceId', 'groupName'] as const) if (form[k] !== undefined) where[k] = form[k]
  await waitFor(`${form.ip}:${form.port} listed`, async () =>
    (await list(where)).hosts.some((h) => h.ip === form.ip && h.port === Number(form.port)) ? true : undefined, 20_000)
  return answer
}

t.test('naming: register answers ok and list returns a ServiceInfo', async (t) => {
  const svc = unique('ct-reg')
  const reg = await register({ serviceName: svc, ip: '127.0.0.1', port: 9001, metadata: '{"zone":"a"}' })
  t.equal(reg.status, 200)
  t.equal(reg.text, 'ok')

  const before = Date.now()
  const info = await list({ serviceName: svc })
  t.equal(info.name, `DEFAULT_GROUP@@${svc}`, 'name is group@@service')
  t.equal(info.groupName, 'DEFAULT_GROUP')
  t.equal(info.clusters, '')
  t.equal(info.cacheMillis, 10000)
  t.equal(info.checksum, '')
  t.equal(info.allIPs, false)
  t.equal(info.reachProtectionThreshold, false)
  t.equal(info.valid, true)
  t.type(info.lastRefTime, 'number')
  t.ok(Math.abs(info.lastRefTime - before) < 60_000, 'lastRefTime is epoch milliseconds')
  t.equal(info.hosts.length, 1)
  t.match(info.hosts[0], {
    instanceId: `127.0.0.1#9001#DEFAULT#DEFAULT_GROUP@@${svc}`,
    ip: '127.0.0.1',
    port: 9001,
    weight: 1,
    healthy: true,
    enabled: true,
    ephemeral: true,
    clusterName: 'DEFAULT',
    serviceName: `DEFAULT_GROUP@@${svc}`,
    metadata: { zone: 'a' },
    instanceHeartBeatInterval: 5000,
    instanceHeartBeatTimeOut: 15000,
    ipDeleteTimeout: 30000
  })

  // serviceName=group@@service is the same service as serviceName + groupName.
  const grouped = await list({ serviceName: `DEFAULT_GROUP@@${svc}` })
  t.equal(grouped.name, `DEFAULT_GROUP@@${svc}`)
  t.equal(grouped.hosts.length, 1)
})

t.test('naming: register takes weight, cluster and metadata; disabled instances are not listed', async (t) => {
  const svc = unique('ct-attrs')
  const reg = await register({
    serviceName: svc,
    ip: '127.0.0.2',
    port: 9002,
    weight: 2.5,
    clusterName: 'c1',
    metadata: JSON.stringify({ version: 'gray' })
  })
  t.equal(reg.text, 'ok')
  const off = await register({ serviceName: svc, ip: '127.0.0.3', port: 9003, enabled: false })
  t.equal(off.text, 'ok')
  const info = await list({ serviceName: svc })
  t.same(
    info.hosts.map((h) => h.ip),
    ['127.0.0.2'],
    'the enabled=false instance is left out of the list'
  )
  t.match(info.hosts[0], {
    instanceId: `127.0.0.2#9002#c1#DEFAULT_GROUP@@${svc}`,
    weight: 2.5,
    enabled: true,
    clusterName: 'c1',
    metadata: { version: 'gray' }
  })
  const c1 = await list({ serviceName: svc, clusters: 'c1' })
  t.equal(c1.clusters, 'c1', 'clusters echoes the filter')
  t.equal(c1.hosts.length, 1)
  const other = await list({ serviceName: svc, clusters: 'other' })
  t.equal(other.clusters, 'other')
  t.equal(other.hosts.length, 0, 'cluster filter excludes other clusters')
})

t.test('naming: beats', async (t) => {
  const svc = unique('ct-beat')
  t.equal((await register({ serviceName: svc, ip: '127.0.0.1', port: 9003 })).text, 'ok')

  const beatJson = (port: number, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      serviceName: `DEFAULT_GROUP@@${svc}`,
      ip: '127.0.0.1',
      port,
      cluster: 'DEFAULT',
      weight: 1,
      metadata: {},
      scheduled: true,
      ...extra
    })

  const full = await call('PUT', `${B}/v1/ns/instance/beat`, { form: { serviceName: svc, beat: beatJson(9003) } })
  t.equal(full.status, 200)
  t.same(json(full), { clientBeatInterval: 5000, code: 10200, lightBeatEnabled: true }, 'full beat of a known instance')

  const light = await call('PUT', `${B}/v1/ns/instance/beat`, {
    query: { serviceName: svc, ip: '127.0.0.1', port: 9003, clusterName: 'DEFAULT' }
  })
  t.equal(light.status, 200)
  t.same(json(light), { clientBeatInterval: 5000, code: 10200, lightBeatEnabled: true }, 'light beat of a known instance')

  const lightUnknown = await call('PUT', `${B}/v1/ns/instance/beat`, {
    query: { serviceName: svc, ip: '127.0.0.1', port: 9999 }
  })
  t.equal(lightUnknown.status, 200, 'an unknown instance is not an HTTP error')
  t.same(json(lightUnknown), { clientBeatInterval: 5000, code: 20404, lightBeatEnabled: true }, '20404: register again')

  const fullUnknown = await call('PUT', `${B}/v1/ns/instance/beat`, {
    form: { serviceName: svc, beat: beatJson(9004, { weight: 3, metadata: { from: 'beat' } }) }
  })
  t.same(json(fullUnknown), { clientBeatInterval: 5000, code: 10200, lightBeatEnabled: true })
  // a real Nacos applies it asynchronously (and serves lists from a cache it refreshes on change)
  const reRegistered = await waitFor('the beat-registered instance listed', async () =>
    (await list({ serviceName: svc })).hosts.find((h) => h.port === 9004), 20_000).catch(() => undefined)
  t.ok(reRegistered, 'a full beat of an unknown instance registers it')
  t.match(reRegistered, { ip: '127.0.0.1', weight: 3, healthy: true, ephemeral: true, metadata: { from: 'beat' } })
})

t.test('naming: deregister', async (t) => {
  const svc = unique('ct-dereg')
  await register({ serviceName: svc, ip: '127.0.0.1', port: 9005 })
  await register({ serviceName: svc, ip: '127.0.0.1', port: 9006 })
  const del = await call('DELETE', `${B}/v1/ns/instance`, { query: { serviceName: svc, ip: '127.0.0.1', port: 9005 } })
  t.equal(del.status, 200)
  t.equal(del.text, 'ok')
  const ports = await waitFor('the deregistered instance gone', async () => {
    const now = (await list({ serviceName: svc })).hosts.map((h) => h.port)
    return now.includes(9005) ? undefined : now
  }, 20_000).catch(() => undefined)
  t.same(ports, [9006], 'only the other instance is left')
  const again = await call('DELETE', `${B}/v1/ns/instance`, { query: { serviceName: svc, ip: '127.0.0.1', port: 9005 } })
  t.equal(again.status, 200, 'deregistering an unknown instance is not an error')
  t.equal(again.text, 'ok')
  const unknownSvc = await call('DELETE', `${B}/v1/ns/instance`, {
    query: { serviceName: unique('ct-none'), ip: '127.0.0.1', port: 1 }
  })
  t.equal(unknownSvc.status, 200)
  t.equal(unknownSvc.text, 'ok')
})

t.test('naming: an unknown service lists as 200 with no hosts', async (t) => {
  const svc = unique('ct-unknown')
  const a = await call('GET', `${B}/v1/ns/instance/list`, { query: { serviceName: svc } })
  t.equal(a.status, 200)
  t.match(json(a), { name: `DEFAULT_GROUP@@${svc}`, groupName: 'DEFAULT_GROUP', hosts: [], cacheMillis: 10000 })
})

t.test('naming: missing parameters answer 400 naming the parameter', async (t) => {
  // This server (no console module) answers the bare text; the official distribution may wrap
  // it as "caused: <text>;" (its console exception handler), so only the text is matched.
  const cases = [
    ['GET', '/v1/ns/instance/list', { query: {} }, "Param 'serviceName' is required."],
    ['POST', '/v1/ns/instance', { form: { ip: '127.0.0.1', port: 1 } }, "Param 'serviceName' is required."],
    ['POST', '/v1/ns/instance', { form: { serviceName: 'x', port: 1 } }, "Param 'ip' is required."],
    ['PUT', '/v1/ns/instance/beat', { query: { ip: '127.0.0.1', port: 1 } }, "Param 'serviceName' is required."],
    ['GET', '/v1/ns/service/list', { query: {} }, "Param 'pageNo' is required."]
  ] as const
  for (const [method, path, opts, text] of cases) {
    const a = await call(method, `${B}${path}`, opts)
    t.equal(a.status, 400, `${method} ${path}`)
    t.ok(a.text.includes(text), `${method} ${path} says ${text} (got ${a.text})`)
  }
})

t.test('naming: namespaces and groups isolate services', async (t) => {
  const svc = unique('ct-iso')
  const ns = unique('ns')
  t.equal((await register({ serviceName: svc, ip: '127.0.0.1', port: 9010, namespaceId: ns })).text, 'ok')
  t.equal((await register({ serviceName: svc, ip: '127.0.0.1', port: 9011, groupName: 'G1' })).text, 'ok')

  t.same((await list({ serviceName: svc, namespaceId: ns })).hosts.map((h) => h.port), [9010], 'own namespace')
  t.same((await list({ serviceName: svc })).hosts, [], 'public namespace, DEFAULT_GROUP sees neither')
  const g1 = await list({ serviceName: svc, groupName: 'G1' })
  t.equal(g1.name, `G1@@${svc}`)
  t.equal(g1.groupName, 'G1')
  t.same(g1.hosts.map((h) => h.port), [9011], 'own group')
  t.same((await list({ serviceName: `G1@@${svc}` })).hosts.map((h) => h.port), [9011], 'group@@service form')
  t.same((await list({ serviceName: svc, groupName: 'G1', namespaceId: ns })).hosts, [], 'group in other namespace')
})

t.test('naming: service list', async (t) => {
  const ns = unique('ns-list')
  const a = unique('ct-svc-a')
  const b = unique('ct-svc-b')
  await register({ serviceName: a, ip: '127.0.0.1', port: 9020, namespaceId: ns })
  await register({ serviceName: b, ip: '127.0.0.1', port: 9021, namespaceId: ns })
  await register({ serviceName: unique('ct-svc-g'), ip: '127.0.0.1', port: 9022, namespaceId: ns, groupName: 'G2' })

  const page = await call('GET', `${B}/v1/ns/service/list`, { query: { pageNo: 1, pageSize: 10, namespaceId: ns } })
  t.equal(page.status, 200)
  const body = json(page) as { count: number; doms: string[] }
  t.same(Object.keys(body).sort(), ['count', 'doms'])
  t.equal(body.count, 2, 'only DEFAULT_GROUP services are counted without groupName')
  t.same([...body.doms].sort(), [a, b].sort(), 'doms are ungrouped names')

  const g2 = json(
    await call('GET', `${B}/v1/ns/service/list`, { query: { pageNo: 1, pageSize: 10, namespaceId: ns, groupName: 'G2' } })
  ) as { count: number; doms: string[] }
  t.equal(g2.count, 1)
  t.equal(g2.doms.length, 1)

  const empty = json(
    await call('GET', `${B}/v1/ns/service/list`, { query: { pageNo: 1, pageSize: 10, namespaceId: unique('ns-empty') } })
  )
  t.same(empty, { count: 0, doms: [] })
})

t.test('naming: operator metrics is the liveness probe', async (t) => {
  const a = await call('GET', `${B}/v1/ns/operator/metrics`)
  t.equal(a.status, 200)
  t.match(String(a.headers['content-type']), /^application\/json/)
  t.same(json(a), { status: 'UP' })
})

t.test('naming: instances without beats turn unhealthy, then are removed', async (t) => {
  // Per-instance timeouts (ms) from metadata; real Nacos checks about every 5 s, so the
  // unhealthy window (timeout to delete timeout) spans more than one check to be observable.
  const svc = unique('ct-expiry')
  const metadata = JSON.stringify({
    'preserved.heart.beat.interval': '1000',
    'preserved.heart.beat.timeout': '3000',
    'preserved.ip.delete.timeout': '11000'
  })
  t.equal((await register({ serviceName: svc, ip: '127.0.0.1', port: 9030, metadata })).text, 'ok')
  const fresh = await list({ serviceName: svc })
  t.match(fresh.hosts[0], { healthy: true, instanceHeartBeatInterval: 1000, instanceHeartBeatTimeOut: 3000, ipDeleteTimeout: 11000 })

  const unhealthy = await waitFor('the instance to turn unhealthy', async () => {
    const h = (await list({ serviceName: svc })).hosts[0]
    return h !== undefined && !h.healthy ? h : undefined
  }, 30_000)
  t.equal(unhealthy.port, 9030, 'still listed while unhealthy')
  t.same((await list({ serviceName: svc, healthyOnly: true })).hosts, [], 'healthyOnly hides it')

  await waitFor('the instance to be removed', async () => ((await list({ serviceName: svc })).hosts.length === 0 ? true : undefined), 30_000)
  t.pass('removed after the delete timeout')
})

t.test('config: publish, get, delete', async (t) => {
  const dataId = unique('ct-cfg')
  const content = 'flowtag:\n  gray: true\n'
  const pub = await call('POST', `${B}/v1/cs/configs`, { form: { dataId, group: 'DEFAULT_GROUP', content, type: 'yaml' } })
  t.equal(pub.status, 200)
  t.equal(pub.text, 'true')

  // Real Nacos makes a publish readable asynchronously (a few ms later): poll.
  const got = await waitFor('the published config to be readable', async () => {
    const a = await call('GET', `${B}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP' } })
    return a.status === 200 ? a : undefined
  }, 20_000)
  t.equal(got.text, content)
  t.equal(got.headers['content-md5'], md5(content))
  t.equal(got.headers['config-type'], 'yaml')
  t.match(String(got.headers['content-type']), /^text\/plain/)

  const plain = unique('ct-cfg-text')
  await call('POST', `${B}/v1/cs/configs`, { form: { dataId: plain, group: 'DEFAULT_GROUP', content: 'x' } })
  const plainGot = await waitFor('the second config', async () => {
    const a = await call('GET', `${B}/v1/cs/configs`, { query: { dataId: plain, group: 'DEFAULT_GROUP' } })
    return a.status === 200 ? a : undefined
  }, 20_000)
  t.equal(plainGot.headers['config-type'], 'text', 'type defaults to text')

  const del = await call('DELETE', `${B}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP' } })
  t.equal(del.status, 200)
  t.equal(del.text, 'true')
  const gone = await waitFor('the deleted config to 404', async () => {
    const a = await call('GET', `${B}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP' } })
    return a.status === 404 ? a : undefined
  }, 20_000)
  t.equal(gone.text, 'config data not exist\n')

  const delMissing = await call('DELETE', `${B}/v1/cs/configs`, { query: { dataId: unique('ct-none'), group: 'DEFAULT_GROUP' } })
  t.equal(delMissing.status, 200)
  t.equal(delMissing.text, 'true', 'deleting a missing config is true too')
})

t.test('config: a form body over 2 MiB loses its parameters (Tomcat\'s max-http-form-post-size under Nacos)', async (t) => {
  const dataId = unique('ct-form')
  // A form of exactly n bytes once url-encoded (nothing here needs escaping).
  const form = (n: number) => ({ dataId, group: 'DEFAULT_GROUP', content: 'a'.repeat(n - `dataId=${dataId}&group=DEFAULT_GROUP&content=`.length) })
  const at = await call('POST', `${B}/v1/cs/configs`, { form: form(2 * 1024 * 1024) })
  t.same([at.status, at.text], [200, 'true'], '2097152 bytes pass')
  const over = await call('POST', `${B}/v1/cs/configs`, { form: form(2 * 1024 * 1024 + 1) })
  t.equal(over.status, 400, 'one byte more: the form is not read')
  t.match(over.text, /Required request parameter 'dataId' for method parameter type String is not present/)
})

t.test('config: a missing config is 404', async (t) => {
  const a = await call('GET', `${B}/v1/cs/configs`, { query: { dataId: unique('ct-missing'), group: 'DEFAULT_GROUP' } })
  t.equal(a.status, 404)
  t.equal(a.text, 'config data not exist\n')
})

t.test('config: tenants isolate configs', async (t) => {
  const dataId = unique('ct-tenant')
  const tenant = unique('tenant')
  t.equal((await call('POST', `${B}/v1/cs/configs`, { form: { dataId, group: 'DEFAULT_GROUP', tenant, content: 'in-tenant' } })).text, 'true')
  const got = await waitFor('the tenant config', async () => {
    const a = await call('GET', `${B}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP', tenant } })
    return a.status === 200 ? a : undefined
  }, 20_000)
  t.equal(got.text, 'in-tenant')
  const pub = await call('GET', `${B}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP' } })
  t.equal(pub.status, 404, 'not visible in the public namespace')
  const other = await call('GET', `${B}/v1/cs/configs`, { query: { dataId, group: 'OTHER_GROUP', tenant } })
  t.equal(other.status, 404, 'not visible in another group')
})

t.test('config: md5 long polling', async (t) => {
  const dataId = unique('ct-lp')
  const tenant = unique('tenant-lp')
  const publish = async (content: string, tn?: string) => {
    const form: Record<string, string> = { dataId, group: 'DEFAULT_GROUP', content }
    if (tn !== undefined) form.tenant = tn
    t.equal((await call('POST', `${B}/v1/cs/configs`, { form })).text, 'true')
    await waitFor('the config to be readable', async () => {
      const q: Record<string, string> = { dataId, group: 'DEFAULT_GROUP' }
      if (tn !== undefined) q.tenant = tn
      const a = await call('GET', `${B}/v1/cs/configs`, { query: q })
      return a.status === 200 && a.text === content ? true : undefined
    }, 20_000)
  }
  const poll = (line: string, headers: Record<string, string>) =>
    call('POST', `${B}/v1/cs/configs/listener`, { form: { 'Listening-Configs': line }, headers })

  await publish('v1')
  await publish('t1', tenant)

  const stale = await poll(`${dataId}\x02DEFAULT_GROUP\x02\x01`, { 'Long-Pulling-Timeout': '30000' })
  t.equal(stale.status, 200)
  t.equal(stale.text, `${encodeURIComponent(dataId)}%02DEFAULT_GROUP%01\n`, 'changed keys, url-encoded, newline-terminated')

  const staleTenant = await poll(`${dataId}\x02DEFAULT_GROUP\x02${md5('old')}\x02${tenant}\x01`, { 'Long-Pulling-Timeout': '30000' })
  t.equal(staleTenant.text, `${encodeURIComponent(dataId)}%02DEFAULT_GROUP%02${encodeURIComponent(tenant)}%01\n`, 'tenant keys carry the tenant')

  const current = `${dataId}\x02DEFAULT_GROUP\x02${md5('v1')}\x01`
  const noHangup = await poll(current, { 'Long-Pulling-Timeout': '30000', 'Long-Pulling-Timeout-No-Hangup': 'true' })
  t.equal(noHangup.status, 200)
  t.equal(noHangup.text, '', 'No-Hangup answers at once, empty when nothing changed')

  // Held until a publish: the answer must come after the publish started.
  let published = 0
  const held = poll(current, { 'Long-Pulling-Timeout': '30000' }).then((a) => ({ a, at: Date.now() }))
  await new Promise((r) => setTimeout(r, 1500))
  published = Date.now()
  await call('POST', `${B}/v1/cs/configs`, { form: { dataId, group: 'DEFAULT_GROUP', content: 'v2' } })
  const released = await held
  t.ok(released.at >= published, 'the poll was held until the publish')
  t.equal(released.a.text, `${encodeURIComponent(dataId)}%02DEFAULT_GROUP%01\n`)

  // Nothing changes: an empty answer when the hold ends (Nacos holds at least 10 s).
  const v2 = `${dataId}\x02DEFAULT_GROUP\x02${md5('v2')}\x01`
  await waitFor('v2 to be readable', async () => {
    const a = await call('GET', `${B}/v1/cs/configs`, { query: { dataId, group: 'DEFAULT_GROUP' } })
    return a.text === 'v2' ? true : undefined
  }, 20_000)
  const started = Date.now()
  const quiet = await poll(v2, { 'Long-Pulling-Timeout': '3000' })
  t.equal(quiet.status, 200)
  t.equal(quiet.text, '', 'empty body after the hold')
  t.ok(Date.now() - started >= 2500, 'the request was held, not answered at once')
})

t.test('config: missing Listening-Configs is 400', async (t) => {
  const a = await call('POST', `${B}/v1/cs/configs/listener`, { form: {} })
  t.equal(a.status, 400)
  t.ok(a.text.includes('invalid probeModify'), `says invalid probeModify (got ${a.text})`)
})

// ---- auth on ----------------------------------------------------------------------------

const authAddr = process.env.NACOS_AUTH_SERVER_ADDR
if ((authAddr !== undefined && authAddr !== '') || !target.real) {
  const password = process.env.NACOS_PASSWORD ?? 'nacos-test-pw'
  const authTarget = await openTarget('NACOS_AUTH_SERVER_ADDR', { compat: '2.5', auth: { username: 'nacos', password } })
  t.teardown(() => authTarget.close())
  const A = authTarget.base

  t.test('auth: login returns a token', async (t) => {
    const a = await call('POST', `${A}/v1/auth/login`, { form: { username: 'nacos', password } })
    t.equal(a.status, 200)
    const body = json(a) as Record<string, unknown>
    t.type(body.accessToken, 'string')
    t.ok(String(body.accessToken).length > 0)
    t.equal(body.tokenTtl, 18000)
    t.equal(body.globalAdmin, true)
    t.equal(body.username, 'nacos')

    const wrong = await call('POST', `${A}/v1/auth/login`, { form: { username: 'nacos', password: `${password}-wrong` } })
    t.not(wrong.status, 200, 'a wrong password gets no token')
    t.notOk(wrong.text.includes('accessToken'))
  })

  t.test('auth: calls without a valid token are 403', async (t) => {
    const svc = unique('ct-auth')
    const noToken = await call('GET', `${A}/v1/ns/instance/list`, { query: { serviceName: svc } })
    t.equal(noToken.status, 403)
    t.match(json(noToken), { status: 403, message: 'user not found!' })
    const badToken = await call('GET', `${A}/v1/ns/instance/list`, { query: { serviceName: svc }, headers: { accessToken: 'bogus' } })
    t.equal(badToken.status, 403)
    t.match(json(badToken), { status: 403, message: 'token invalid!' })
    const reg = await call('POST', `${A}/v1/ns/instance`, { form: { serviceName: svc, ip: '127.0.0.1', port: 1 } })
    t.equal(reg.status, 403)
    const cfg = await call('GET', `${A}/v1/cs/configs`, { query: { dataId: svc, group: 'DEFAULT_GROUP' } })
    t.equal(cfg.status, 403)
    const metrics = await call('GET', `${A}/v1/ns/operator/metrics`)
    t.equal(metrics.status, 200, 'the metrics probe needs no token')
  })

  t.test('auth: a token opens the API (Bearer, accessToken header, query)', async (t) => {
    const login = json(await call('POST', `${A}/v1/auth/login`, { form: { username: 'nacos', password } })) as {
      accessToken: string
    }
    const token = login.accessToken
    const svc = unique('ct-auth-ok')
    const reg = await call('POST', `${A}/v1/ns/instance`, {
      form: { serviceName: svc, ip: '127.0.0.1', port: 9040 },
      headers: { authorization: `Bearer ${token}` }
    })
    t.equal(reg.status, 200)
    t.equal(reg.text, 'ok')
    // registration lands asynchronously on a real Nacos: poll until the instance shows
    const viaHeader = await waitFor('the instance listed through an accessToken header', async () => {
      const a = await call('GET', `${A}/v1/ns/instance/list`, { query: { serviceName: svc }, headers: { accessToken: token } })
      return a.status !== 200 || (json(a) as ServiceInfo).hosts.length === 1 ? a : undefined
    }, 20_000)
    t.equal(viaHeader.status, 200)
    t.equal((json(viaHeader) as ServiceInfo).hosts.length, 1)
    const viaQuery = await call('GET', `${A}/v1/ns/instance/list`, { query: { serviceName: svc, accessToken: token } })
    t.equal(viaQuery.status, 200)
    const pub = await call('POST', `${A}/v1/cs/configs`, {
      form: { dataId: svc, group: 'DEFAULT_GROUP', content: 'secret' },
      headers: { authorization: `Bearer ${token}` }
    })
    t.equal(pub.text, 'true')
  })
}
