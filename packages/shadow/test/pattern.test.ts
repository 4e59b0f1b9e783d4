// JSON-pointer patterns: `*` one segment, `**` any number (none included); RFC 6901 escapes.
import t from 'tap'
import * as root from '../src/index.ts'
import { matchesPattern, parsePointer, toPointer } from '../src/pattern.ts'

const m = (pattern: string, path: string) => matchesPattern(parsePointer(pattern), parsePointer(path))

t.test('pointers', async (t) => {
  t.same(parsePointer(''), [])
  t.same(parsePointer('/a~1b/m~0n/0'), ['a/b', 'm~n', '0'])
  t.equal(toPointer(['a/b', 'm~n', '0']), '/a~1b/m~0n/0')
  t.equal(toPointer([]), '')
  t.same(parsePointer('/'), [''], 'the key "" is a segment')
})

t.test('matching', async (t) => {
  t.ok(m('/a/b', '/a/b'))
  t.notOk(m('/a/b', '/a'))
  t.notOk(m('/a', '/a/b'), 'a pattern matches a path, not its subtree (the walk stops at a match)')
  t.ok(m('/a/*', '/a/x'))
  t.notOk(m('/a/*', '/a/x/y'))
  t.notOk(m('/a/*', '/a'))
  t.ok(m('/**', '/a/b/c'))
  t.ok(m('/**', ''), '** matches no segment too')
  t.ok(m('/**/ts', '/ts'))
  t.ok(m('/**/ts', '/a/0/ts'))
  t.notOk(m('/**/ts', '/a/ts/x'))
  t.ok(m('/a/**/b/*', '/a/x/y/b/z'))
  t.notOk(m('/a/**/b/*', '/a/x/y/b'))
  t.ok(m('', ''))
  t.notOk(m('', '/a'))
})

t.test('the root keeps the helpers for one minor version as deprecated aliases of the same functions', async (t) => {
  t.equal(root.parsePointer, parsePointer)
  t.equal(root.toPointer, toPointer)
  t.equal(root.matchesPattern, matchesPattern)
})
