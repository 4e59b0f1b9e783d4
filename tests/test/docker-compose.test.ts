// docker/docker-compose.yml runs the official Nacos image standalone, with the same 2.x release
// that tools/real-nacos runs in CI, and only variables the image documents.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'

const root = new URL('../../', import.meta.url)
const compose = parse(readFileSync(new URL('docker/docker-compose.yml', root), 'utf8')) as {
  services: Record<string, { image: string; environment: Record<string, string> | string[]; ports: string[] }>
}
const pom = readFileSync(new URL('tools/real-nacos/v2/pom.xml', root), 'utf8')

// Variables read by the nacos/nacos-server image's startup script and application.properties
// (nacos-docker, tags v2.5.x / v3.x).
const DOCUMENTED = new Set([
  'MODE',
  'PREFER_HOST_MODE',
  'NACOS_SERVER_IP',
  'NACOS_SERVERS',
  'NACOS_APPLICATION_PORT',
  'NACOS_CONSOLE_PORT',
  'NACOS_DEPLOYMENT_TYPE',
  'SPRING_DATASOURCE_PLATFORM',
  'MYSQL_SERVICE_HOST',
  'MYSQL_SERVICE_PORT',
  'MYSQL_SERVICE_DB_NAME',
  'MYSQL_SERVICE_USER',
  'MYSQL_SERVICE_PASSWORD',
  'MYSQL_SERVICE_DB_PARAM',
  'NACOS_AUTH_ENABLE',
  'NACOS_AUTH_TOKEN',
  'NACOS_AUTH_IDENTITY_KEY',
  'NACOS_AUTH_IDENTITY_VALUE',
  'NACOS_AUTH_TOKEN_EXPIRE_SECONDS',
  'NACOS_AUTH_CACHE_ENABLE',
  'NACOS_AUTH_USER_AGENT_AUTH_WHITE_ENABLE',
  'NACOS_AUTH_ADMIN_ENABLE',
  'NACOS_AUTH_CONSOLE_ENABLE',
  'NACOS_SECURITY_IGNORE_URLS',
  'NACOS_CORE_PARAM_CHECK_ENABLED',
  'JVM_XMS',
  'JVM_XMX',
  'JVM_XMN',
  'FUNCTION_MODE'
])

const env = (svc: { environment: Record<string, string> | string[] }): Record<string, string> =>
  Array.isArray(svc.environment)
    ? Object.fromEntries(svc.environment.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]))
    : Object.fromEntries(Object.entries(svc.environment).map(([k, v]) => [k, String(v)]))

/** The default of a `${NAME:-default}` value, or the value itself. */
const defaultOf = (v: string): string => /^\$\{[A-Z_]+:-(.*)\}$/.exec(v)?.[1] ?? v

t.test('a nacos service on the official image, same release as CI runs', async (t) => {
  // the demo apps beside it are checked by apps/demo/test/deploy-files.test.ts
  t.ok(compose.services.nacos, 'has a nacos service')
  const nacos = compose.services.nacos!
  const m = /^nacos\/nacos-server:v(2\.\d+\.\d+)$/.exec(nacos.image)
  t.ok(m, `image is a pinned 2.x tag of nacos/nacos-server (got ${nacos.image})`)
  const ciVersion = /<nacos\.version>([^<]+)<\/nacos\.version>/.exec(pom)?.[1]
  t.equal(m?.[1], ciVersion, 'tag matches tools/real-nacos/v2/pom.xml')
})

t.test('publishes HTTP 8848 and gRPC 9848 on loopback', async (t) => {
  const ports = compose.services.nacos!.ports.map(String)
  const mapped = ports.map((p) => {
    const parts = p.split(':')
    return { host: parts.length === 3 ? parts[0] : undefined, published: parts.at(-2), target: parts.at(-1) }
  })
  t.same(
    mapped.map((p) => [p.published, p.target]),
    [
      ['8848', '8848'],
      ['9848', '9848']
    ]
  )
  for (const p of mapped) t.equal(p.host, '127.0.0.1', `port ${p.target} bound to loopback`)
})

t.test('standalone, auth variables present, only documented names', async (t) => {
  const e = env(compose.services.nacos!)
  t.equal(e.MODE, 'standalone')
  t.equal(defaultOf(e.NACOS_AUTH_ENABLE ?? ''), 'false', 'auth off by default')
  for (const name of ['NACOS_AUTH_TOKEN', 'NACOS_AUTH_IDENTITY_KEY', 'NACOS_AUTH_IDENTITY_VALUE']) {
    t.ok(defaultOf(e[name] ?? '').length > 0, `${name} has a default`)
  }
  const secret = Buffer.from(defaultOf(e.NACOS_AUTH_TOKEN ?? ''), 'base64')
  t.ok(secret.length >= 32, `token secret decodes to >= 32 bytes (${secret.length})`)
  for (const name of Object.keys(e)) t.ok(DOCUMENTED.has(name), `${name} is read by the image`)
})
