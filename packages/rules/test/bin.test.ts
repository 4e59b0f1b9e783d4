import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { doc } from './fixtures/doc.ts'

const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url))

function run (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
    })
  })
}

t.test('flowtag-rules validate', async (t) => {
  const dir = t.testdir({
    'good.json': doc(3),
    'bad.json': JSON.stringify({ version: 1, rules: [{ name: 'a', when: { ip: ['10.0.0.0/99'] }, lane: 'v2' }], default: 'bad lane' }),
    'broken.json': '{ "version": '
  })
  const ok = await run(['validate', join(dir, 'good.json')])
  t.equal(ok.code, 0)
  t.match(ok.stdout, /valid \(version 3, 1 rules, 1 services, default lane v1\)/)

  const bad = await run(['validate', join(dir, 'bad.json')])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /invalid rule set/)
  t.match(bad.stderr, /rules\.0\.when\.ip\.0: not a valid IPv4\/IPv6 address or CIDR/)
  t.match(bad.stderr, /default: must be 1-64 characters/)

  const broken = await run(['validate', join(dir, 'broken.json')])
  t.equal(broken.code, 1)
  t.match(broken.stderr, /\(root\): not JSON/)

  t.equal((await run(['validate', join(dir, 'nope.json')])).code, 2, 'unreadable file')
  t.equal((await run([])).code, 2, 'no command')
  t.equal((await run(['check', 'x'])).code, 2, 'unknown command')
  t.equal((await run(['validate', 'a', 'b'])).code, 2, 'extra arguments')
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /usage: flowtag-rules validate <file>/)
})

t.test('flowtag-rules explain', async (t) => {
  const dir = t.testdir({
    'rules.json': JSON.stringify({
      version: 4,
      user: { cookie: 'uid' },
      rules: [
        { name: 'testers', when: { headers: { 'x-tester': { equals: 'yes' } } }, lane: 'v2' },
        { name: 'office', when: { ip: ['10.0.0.0/8'] }, lane: 'v3' },
        { name: 'vip', when: { users: ['alice'] }, lane: 'v4' },
        { name: 'preview', when: { query: { p: { exists: true } } }, lane: 'v5' }
      ],
      default: 'v1'
    })
  })
  const file = join(dir, 'rules.json')
  const a = await run(['explain', file, '--header', 'X-Tester=yes'])
  t.equal(a.code, 0)
  t.match(a.stdout, /^lane v2: rule "testers" matched \(version 4\)\n {2}match rules\.0 testers: header x-tester equals "yes"/)
  t.match((await run(['explain', file, '--ip', '10.1.2.3'])).stdout, /lane v3[\s\S]*skip {2}rules\.0 testers: header x-tester equals "yes": absent/)
  t.match((await run(['explain', file, '--cookie', 'uid=alice'])).stdout, /lane v4/)
  t.match((await run(['explain', file, '--query', 'p=1'])).stdout, /lane v5/)
  t.match((await run(['explain', file])).stdout, /lane v1: no rule matched: default lane/)
  t.equal((await run(['explain', file, '--header'])).code, 2, 'missing value')
  t.equal((await run(['explain', file, '--header', 'novalue'])).code, 2, 'not name=value')
  t.equal((await run(['explain', file, '--bogus', 'a=b'])).code, 2, 'unknown option')
  t.equal((await run(['explain', join(dir, 'missing.json')])).code, 2)
})
