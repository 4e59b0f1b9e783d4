import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url))

function run(args: string[]) {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  return { child, output: () => out }
}

t.test('the bin logs its address, serves, and stops cleanly on SIGTERM and SIGINT', async (t) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const { child, output } = run(['--port', '0'])
    const exited = once(child, 'exit')
    const end = Date.now() + 15_000
    while (!/NACOS_SERVER_ADDR=(\S+)\)/.test(output()) && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
    const address = /NACOS_SERVER_ADDR=(\S+)\)/.exec(output())?.[1]
    t.ok(address, `logged its address: ${output()}`)
    const res = await fetch(`http://${address}/nacos/v1/ns/operator/metrics`)
    t.same(await res.json(), { status: 'UP' })
    child.kill(signal)
    const [code] = await exited
    t.equal(code, 0, `${signal} exits 0`)
  }
})

t.test('bad arguments exit 2 with usage; a bad port exits 1 with a coded error', async (t) => {
  const bad = run(['--nope'])
  const [code] = await once(bad.child, 'exit')
  t.equal(code, 2)
  t.match(bad.output(), /usage: flowtag-nacos-dev/)
  const port = run(['--port', '99999'])
  const [code2] = await once(port.child, 'exit')
  t.equal(code2, 1)
  t.match(port.output(), /FLOWTAG_DEVSERVER_BAD_OPTION: @flowtag\/nacos-dev-server: invalid option "port"/)
})
