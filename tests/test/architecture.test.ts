// ARCHITECTURE.md names, for each step of a request's walk, a file and the functions in it.
// This test keeps the page true: every named file exists and declares every named function, so
// a rename or a move that forgets the page fails here.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..', '..')
const page = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8')

interface Row { line: number, file: string, names: string[] }

/** Table rows whose file cell is a repository path in backticks; the next cell lists names. */
function rows (text: string): Row[] {
  const out: Row[] = []
  text.split('\n').forEach((raw, i) => {
    if (!raw.startsWith('|')) return
    const cells = raw.split('|').slice(1, -1).map((c) => c.trim())
    const at = cells.findIndex((c) => /^`[\w./-]+\.ts`$/.test(c))
    if (at === -1) return
    const names = [...(cells[at + 1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!)
    out.push({ line: i + 1, file: cells[at]!.slice(1, -1), names })
  })
  return out
}

const escape = (s: string) => s.replace(/[$#]/g, (c) => '\\' + c)

/** A top-level or exported declaration of `name` (function, class, const, or a named function expression, as hooks are). */
function declares (source: string, name: string): boolean {
  const n = escape(name)
  return new RegExp(`(^|\\n)\\s*(export\\s+)?(default\\s+)?(async\\s+)?(function\\*?|class|const|let|interface|type)\\s+${n}\\b`).test(source) ||
    new RegExp(`\\bfunction\\s+${n}\\s*[<(]`).test(source)
}

/** A method (or getter) of `cls` declared in the file: searched in the class's body only. */
function declaresMethod (source: string, cls: string, method: string): boolean {
  const start = source.search(new RegExp(`class\\s+${escape(cls)}\\b`))
  if (start === -1) return false
  // the class body runs until the next top-level declaration (or the end of the file)
  const rest = source.slice(start + 1)
  const end = rest.search(/\n(export\s+)?(default\s+)?(async\s+)?(function|class|const|let|interface|type)\s/)
  const body = end === -1 ? rest : rest.slice(0, end)
  const m = escape(method)
  return new RegExp(`\\n\\s+(override\\s+)?(static\\s+)?(async\\s+)?(get\\s+)?${m}\\s*[<(]`).test(body)
}

const found = rows(page)

t.test('the page lists the walk', async (t) => {
  // Edge, outbound, service, registry, rules: each step of the walk that has landed has rows.
  t.ok(found.length >= 30, `rows found: ${found.length}`)
  for (const step of ['1. Edge', '2. Outbound', '3. Service', '4. Registry', '5. Rules', '6. Canary']) {
    t.match(page, new RegExp(`^## ${step.replace('.', '\\.')}`, 'm'), `a section for ${step}`)
  }
  for (const row of found) t.ok(row.names.length > 0, `line ${row.line}: ${row.file} names at least one function`)
})

t.test('every named file exists and declares every named function', async (t) => {
  for (const row of found) {
    const path = join(root, row.file)
    if (!existsSync(path)) {
      t.fail(`ARCHITECTURE.md line ${row.line}: ${row.file} does not exist`)
      continue
    }
    const source = readFileSync(path, 'utf8')
    for (const name of row.names) {
      const dot = name.indexOf('.')
      const ok = dot === -1 ? declares(source, name) : declaresMethod(source, name.slice(0, dot), name.slice(dot + 1))
      t.ok(ok, `ARCHITECTURE.md line ${row.line}: ${row.file} declares ${name}`)
    }
  }
})

t.test('the checker itself can fail', async (t) => {
  const src = 'export class A {\n  run (x) {}\n  #hidden () {}\n}\nfunction helper () {}\nconst p = fp(function hook (a) {})\n'
  t.ok(declaresMethod(src, 'A', 'run'))
  t.ok(declaresMethod(src, 'A', '#hidden'))
  t.notOk(declaresMethod(src, 'A', 'helper'), 'a function after the class is not its method')
  t.notOk(declaresMethod(src, 'B', 'run'), 'no such class')
  t.ok(declares(src, 'helper'))
  t.ok(declares(src, 'hook'), 'a named function expression (a hook) counts')
  t.notOk(declares(src, 'missing'))
  t.same(rows('| 1 | x | `a/b.ts` | `f`, `C.m` |\n| not | a | row |'), [{ line: 1, file: 'a/b.ts', names: ['f', 'C.m'] }])
})
