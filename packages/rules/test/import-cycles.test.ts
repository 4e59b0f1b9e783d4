// The modules of @flowtag/rules import one way: no circle of relative imports (a type-only
// import counts too: it ties the files together for a reader and for a refactor alike).
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const IMPORT = /^\s*(?:import|export)\b[^'"]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gm

/** Relative imports of every .ts file under `dir`, by absolute path. */
export function importGraph (dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith('.ts')) {
        const text = readFileSync(p, 'utf8')
        graph.set(p, [...text.matchAll(IMPORT)].map((m) => resolve(dirname(p), m[1] as string)))
      }
    }
  }
  walk(dir)
  return graph
}

/** Every circle of imports in `graph`, each as the list of files around it. */
export function cycles (graph: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (f: string): void => {
    state.set(f, 'open')
    stack.push(f)
    for (const to of graph.get(f) ?? []) {
      if (state.get(to) === 'open') found.push(stack.slice(stack.indexOf(to)))
      else if (!state.has(to) && graph.has(to)) visit(to)
    }
    stack.pop()
    state.set(f, 'done')
  }
  for (const f of graph.keys()) if (!state.has(f)) visit(f)
  return found
}

const src = fileURLToPath(new URL('../src', import.meta.url))

t.test('no import circle in src', async (t) => {
  const graph = importGraph(src)
  t.ok(graph.size > 10, 'the sources were read')
  t.same(cycles(graph).map((c) => c.map((f) => f.slice(src.length + 1))), [])
})

t.test('the check finds a circle, type-only imports included', async (t) => {
  const g = new Map([['/a.ts', ['/b.ts']], ['/b.ts', ['/c.ts']], ['/c.ts', ['/a.ts']], ['/d.ts', ['/a.ts']]])
  t.same(cycles(g), [['/a.ts', '/b.ts', '/c.ts']])
  const matched = [...'import type { X } from \'./x.ts\'\nexport { Y } from \'../y.ts\'\nimport { z } from \'zod\''.matchAll(IMPORT)].map((m) => m[1])
  t.same(matched, ['./x.ts', '../y.ts'])
})
