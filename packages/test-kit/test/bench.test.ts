import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { firstLine, loadAverage, machine, median, numberArg, replaceSection, writeSection } from '../src/bench.ts'

t.test('median: the middle value, the mean of the two middle ones, NaN for none', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([7]), 7)
  t.ok(Number.isNaN(median([])))
  const xs = [3, 1, 2]
  median(xs)
  t.same(xs, [3, 1, 2], 'the input is left as it was')
})

t.test('report lines: load average, machine, numbers from the command line', async (t) => {
  t.equal(loadAverage([3.44, 5.9, 5]), '3.4 / 5.9 / 5.0')
  t.match(loadAverage(), /^\d+\.\d \/ \d+\.\d \/ \d+\.\d$/)
  t.match(machine(), new RegExp(`^Node ${process.version.replaceAll('.', '\\.')}, \\d+ CPUs \\(.+\\)$`))
  t.equal(numberArg('--rounds', 8, ['node', 'x.ts', '--rounds', '3']), 3)
  t.equal(numberArg('--rounds', 8, ['node', 'x.ts']), 8)
  t.equal(numberArg('--nothing', 5), 5, 'this process\'s own command line by default')
})

t.test('firstLine: the first stdout line with the prefix; the child exiting first rejects', async (t) => {
  const script = 'process.stdout.write("starting\\n"); setTimeout(() => process.stdout.write("LISTE"), 20); setTimeout(() => process.stdout.write("NING 4242\\nmore\\n"), 40)'
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.equal(await firstLine(child, 'LISTENING '), 'LISTENING 4242', 'a line split across chunks')
  const quiet = spawn(process.execPath, ['-e', 'process.stdout.write("nothing here\\n")'], { stdio: ['ignore', 'pipe', 'inherit'] })
  await t.rejects(firstLine(quiet, 'LISTENING '), { message: 'child exited (0) before printing LISTENING ' })
  const inherited = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await t.rejects(firstLine(inherited, 'X'), /not a pipe/)
})

t.test('replaceSection: in place up to the next heading or mark, next to a sibling, or at the end', async (t) => {
  const doc = '# Benchmarks\n\n## A\n\nold a\n\n## B\n\nold b\n**Mark** tail\n\n## C\n\nc\n'
  t.equal(replaceSection(doc, '## A\n\nnew a\n', { start: '## A' }), '# Benchmarks\n\n## A\n\nnew a\n\n## B\n\nold b\n**Mark** tail\n\n## C\n\nc\n', 'a section up to the next heading')
  t.equal(replaceSection(doc, '**B part** new', { start: '## B\n\nold b', until: ['**Mark**'] }), '# Benchmarks\n\n## A\n\nold a\n\n**B part** new\n\n**Mark** tail\n\n## C\n\nc\n', 'up to a mark, one blank line before it')
  t.equal(replaceSection(doc, '## C\n\nnew c', { start: '## C' }), '# Benchmarks\n\n## A\n\nold a\n\n## B\n\nold b\n**Mark** tail\n\n## new c'.replace('## new c', '## C\n\nnew c\n'), 'the last section')
  t.equal(replaceSection(doc, '## A on Node 22\n\na22', { start: '## A on Node 22', nextTo: '## A' }), '# Benchmarks\n\n## A\n\nold a\n\n## A on Node 22\n\na22\n\n## B\n\nold b\n**Mark** tail\n\n## C\n\nc\n', 'a new section after its sibling')
  t.equal(replaceSection('# B\n\n## C\n\nc', '## D\n\nd', { start: '## D', nextTo: '## C' }), '# B\n\n## C\n\nc\n\n## D\n\nd\n', 'after a sibling that is the last section')
  t.equal(replaceSection('# B\n', '## D\n\nd\n\n\n', { start: '## D', nextTo: '## Z' }), '# B\n\n## D\n\nd\n', 'at the end when there is no sibling')
  t.equal(replaceSection('## D\n\nold', '## D\n\nnew', { start: '## D' }), '## D\n\nnew\n', 'a section at the very start')
})

t.test('writeSection: rewrites the file, or starts one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtag-bench-'))
  const file = join(dir, 'BENCHMARKS.md')
  await writeSection(file, '## S\n\none', { start: '## S' })
  t.equal(readFileSync(file, 'utf8'), '# Benchmarks\n\n## S\n\none\n')
  writeFileSync(file, '# Benchmarks\n\n## S\n\none\n\n## T\n\nt\n')
  await writeSection(file, '## S\n\ntwo', { start: '## S' })
  t.equal(readFileSync(file, 'utf8'), '# Benchmarks\n\n## S\n\ntwo\n\n## T\n\nt\n')
})
