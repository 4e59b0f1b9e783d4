import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { exitOf, runNode, startNode, waitFor } from '@flowtag/test-kit'

const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url))

t.test('the bin logs its address, serves, and stops cleanly on SIGTERM and SIGINT', async (t) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const child = startNode(t, bin, { args: ['--port', '0'] })
    let out = ''
    child.stdout?.on('data', (d) => (out += d))
    child.stderr?.on('data', (d) => (out += d))
    const address = await waitFor('the bin to log its address', () => /NACOS_SERVER_ADDR=(\S+)\)/.exec(out)?.[1], 15_000)
    const res = await fetch(`http://${address}/nacos/v1/ns/operator/metrics`)
    t.same(await res.json(), { status: 'UP' })
    child.kill(signal)
    t.equal((await exitOf(child, 'the bin')).code, 0, `${signal} exits 0`)
  }
})

t.test('bad arguments exit 2 with usage; a bad port exits 1 with a coded error', async (t) => {
  const bad = await runNode(t, bin, { args: ['--nope'] })
  t.equal(bad.code, 2)
  t.match(bad.stdout + bad.stderr, /usage: flowtag-nacos-dev/)
  const port = await runNode(t, bin, { args: ['--port', '99999'] })
  t.equal(port.code, 1)
  t.match(port.stdout + port.stderr, /FLOWTAG_DEVSERVER_BAD_OPTION: @flowtag\/nacos-dev-server: invalid option "port"/)
})

t.test('--help prints the usage and exits 0', async (t) => {
  const help = await runNode(t, bin, { args: ['--help'] })
  t.equal(help.code, 0)
  t.match(help.stdout, /usage: flowtag-nacos-dev/)
})

t.test('--username/--password turn auth on, --data-file keeps configs, --verbose logs to stderr', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'devserver-bin-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const child = startNode(t, bin, { args: ['--port', '0', '--username', 'nacos', '--password', 'secret-pw', '--data-file', join(dir, 'data.json'), '--verbose'] })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d) => (out += d))
  child.stderr?.on('data', (d) => (err += d))
  const address = await waitFor('the bin to log its address', () => /NACOS_SERVER_ADDR=(\S+)\)/.exec(out)?.[1], 15_000)
  const anonymous = await fetch(`http://${address}/nacos/v1/cs/configs?dataId=d&group=G`)
  t.equal(anonymous.status, 403, 'auth is on')
  await anonymous.body?.cancel()
  const login = await fetch(`http://${address}/nacos/v1/auth/login`, { method: 'POST', body: new URLSearchParams({ username: 'nacos', password: 'secret-pw' }) })
  const { accessToken } = await login.json() as { accessToken: string }
  const published = await fetch(`http://${address}/nacos/v1/cs/configs?accessToken=${accessToken}`, { method: 'POST', body: new URLSearchParams({ dataId: 'd', group: 'G', content: 'kept' }) })
  t.equal(await published.text(), 'true')
  await waitFor('verbose lines on stderr', () => err.length > 0)
  child.kill('SIGTERM')
  t.equal((await exitOf(child, 'the bin')).code, 0)
  t.match(readFileSync(join(dir, 'data.json'), 'utf8'), /kept/, 'the data file holds the config')
})

t.test('--compat, --grpc-port, --no-grpc, --no-auth; the start line says the gRPC port and auth', async (t) => {
  const started = async (args: string[]) => {
    const child = startNode(t, bin, { args: ['--port', '0', ...args] })
    let out = ''
    child.stdout?.on('data', (d) => (out += d))
    const line = await waitFor('the start line', () => /^nacos dev server.*NACOS_SERVER_ADDR=\S+\)$/m.exec(out)?.[0], 15_000)
    return { child, line, address: /NACOS_SERVER_ADDR=(\S+)\)/.exec(line)![1]! }
  }
  const v33 = await started(['--compat', '3.3', '--grpc-port', '0'])
  t.match(v33.line, /as Nacos 3\.3\) .* gRPC :\d+, auth on \(user nacos, password nacos\)/)
  t.equal((await fetch(`http://${v33.address}/nacos/v1/cs/configs?dataId=d&group=G`)).status, 404, 'no v1 on 3.3')
  v33.child.kill('SIGTERM')

  const plain = await started(['--no-grpc', '--compat', '3.3', '--no-auth'])
  t.match(plain.line, /as Nacos 3\.3\) .*, no gRPC, auth off/)
  t.equal((await fetch(`http://${plain.address}/nacos/v3/client/ns/instance/list?serviceName=s`)).status, 200, 'no token needed with --no-auth')
  plain.child.kill('SIGTERM')

  const clash = await runNode(t, bin, { args: ['--grpc-port', '9000', '--no-grpc'] })
  t.equal(clash.code, 2)
  t.match(clash.stderr, /--grpc-port and --no-grpc exclude each other/)
  const badCompat = await runNode(t, bin, { args: ['--port', '0', '--compat', '2.0'] })
  t.equal(badCompat.code, 1)
  t.match(badCompat.stderr, /FLOWTAG_DEVSERVER_BAD_OPTION: .*"compat"/)
})
