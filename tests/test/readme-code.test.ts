// Every ```ts block of every README type-checks against the code as it is, so a README cannot
// call an API that does not exist (`rules.serviceLanes` once did) or use a name it never defined.
//
// Each block is checked as its own ES module in tests/.readme-check, where every published package
// and the libraries the READMEs use resolve as in a user's app (tests/package.json). Blocks of
// @flowtag/nestjs are checked as a Nest app is compiled (legacy decorators, parameter properties).
// Two markers, HTML
// comments on the line just above a fence, keep the rendered README short:
//   <!-- ts-continue -->          the block goes on from the previous block of the same README
//                                 (same module: names defined there are in scope; repeated
//                                 import lines are dropped);
//   <!-- ts-prelude: <code> -->   code put before the block, e.g. a `declare const` for a value
//                                 the prose says where it comes from.
import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const outDir = '.readme-check'

interface Block { readme: string, line: number, code: string, continues: boolean, prelude: string[] }

/** The ```ts blocks of one README, with their markers; `line` is the fence's first code line (1-based). */
export function extractBlocks (readme: string, text: string): Block[] {
  const lines = text.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue
    const markers: string[] = []
    for (let j = i - 1; j >= 0 && /^<!--.*-->\s*$/.test(lines[j]!.trim()); j--) markers.unshift(lines[j]!.trim())
    const end = lines.findIndex((l, k) => k > i && l.trim() === '```')
    if (end === -1) throw new Error(`${readme}:${i + 1}: unterminated ts block`)
    blocks.push({
      readme,
      line: i + 2,
      code: lines.slice(i + 1, end).join('\n'),
      continues: markers.includes('<!-- ts-continue -->'),
      prelude: markers.flatMap((m) => m.match(/^<!-- ts-prelude: (.*) -->$/)?.[1] ?? [])
    })
    i = end
  }
  return blocks
}

interface Unit { nest: boolean, file: string, text: string, map: Array<{ from: number, readme: string, line: number }> }

/** Joins continued blocks into one module each; `map` turns a line of the module back into a README line. */
function units (nest: boolean, name: string, blocks: Block[]): Unit[] {
  const out: Unit[] = []
  for (const b of blocks) {
    let u = b.continues ? out.at(-1) : undefined
    if (u === undefined) {
      u = { nest, file: join(root, 'tests', outDir, nest ? 'nest' : 'plain', `${name}-${b.line}.ts`), text: '', map: [] }
      out.push(u)
    }
    const seen = new Set(u.text.split('\n').filter((l) => l.startsWith('import ')))
    const body = b.code.split('\n').map((l) => (l.startsWith('import ') && seen.has(l) ? '' : l))
    const head = u.text === '' ? 0 : u.text.split('\n').length
    const prelude = b.prelude.join('\n')
    u.text += (u.text === '' ? '' : '\n') + (prelude === '' ? '' : prelude + '\n') + body.join('\n')
    u.map.push({ from: head + b.prelude.length, readme: b.readme, line: b.line })
  }
  for (const u of out) u.text += '\nexport {}\n'
  return out
}

async function readmes (): Promise<Array<{ readme: string, name: string }>> {
  const found = [{ readme: 'README.md', name: 'root' }]
  for (const group of ['packages', 'apps']) {
    for (const entry of await readdir(join(root, group), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue
      const readme = join(group, entry.name, 'README.md')
      if (await readFile(join(root, readme), 'utf8').then(() => true, () => false)) {
        found.push({ readme, name: `${group}-${entry.name}` })
      }
    }
  }
  return found
}

t.test('extractBlocks reads fences and markers', async (t) => {
  const md = ['# x', '```ts', 'const a = 1', '```', '<!-- ts-continue -->', '<!-- ts-prelude: declare const b: number -->', '```ts', 'a + b', '```', '```js', 'no', '```'].join('\n')
  const blocks = extractBlocks('X.md', md)
  t.same(blocks.map((b) => [b.line, b.code, b.continues, b.prelude]), [
    [3, 'const a = 1', false, []],
    [8, 'a + b', true, ['declare const b: number']]
  ])
  const [u] = units(false, 'r', blocks)
  t.equal(u!.text, 'const a = 1\ndeclare const b: number\na + b\nexport {}\n')
  t.same(u!.map, [{ from: 0, readme: 'X.md', line: 3 }, { from: 2, readme: 'X.md', line: 8 }])
})

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

/** Type-checks `files` with the repository's compiler options (plus `extra`); the diagnostics, one a line. */
async function check (name: string, files: string[], extra: Record<string, unknown>): Promise<string[]> {
  const tsconfig = join(root, 'tests', outDir, `tsconfig.${name}.json`)
  await writeFile(tsconfig, JSON.stringify({
    extends: '../../tsconfig.base.json',
    // README examples are read by people: unused names are fine there, and a callback's
    // parameters may stay untyped where a user's generated or framework types would type them.
    compilerOptions: { noUnusedLocals: false, noUnusedParameters: false, noImplicitAny: false, ...extra },
    files: files.map((f) => relative(dirname(tsconfig), f))
  }, null, 2))
  const out = await promisify(execFile)(process.execPath, [tsc, '-p', tsconfig, '--pretty', 'false'], { cwd: root, maxBuffer: 1 << 24 })
    .then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
  return out.split('\n').filter((l) => l.trim() !== '')
}

t.test('every ts block of every README type-checks', async (t) => {
  const all: Unit[] = []
  for (const r of await readmes()) {
    const blocks = extractBlocks(r.readme, await readFile(join(root, r.readme), 'utf8'))
    all.push(...units(r.readme.includes('/nestjs/'), r.name, blocks))
  }
  t.ok(all.length >= 20, `found ${all.length} modules to check`)
  const dir = join(root, 'tests', outDir)
  await rm(dir, { recursive: true, force: true })
  await mkdir(join(dir, 'nest'), { recursive: true })
  await mkdir(join(dir, 'plain'), { recursive: true })
  await Promise.all(all.map((u) => writeFile(u.file, u.text)))
  const lines = (await Promise.all([
    check('plain', all.filter((u) => !u.nest).map((u) => u.file), {}),
    check('nest', all.filter((u) => u.nest).map((u) => u.file), { experimentalDecorators: true, emitDecoratorMetadata: true, erasableSyntaxOnly: false })
  ])).flat()
  // Point each diagnostic at the README line it comes from.
  const errors = lines.map((l) => {
    const m = l.match(/^(.*)\((\d+),(\d+)\): (.*)$/)
    if (m === null) return l
    const u = all.find((x) => join(root, m[1]!) === x.file || m[1] === x.file)
    if (u === undefined) return l
    const n = Number(m[2]) - 1
    const at = u.map.findLast((x) => x.from <= n) ?? u.map[0]!
    return `${at.readme}:${at.line + n - at.from}: ${m[4]}`
  })
  t.same(errors, [], 'no type errors in README code')
  await rm(dir, { recursive: true, force: true })
})
