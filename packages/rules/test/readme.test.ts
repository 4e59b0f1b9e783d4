import { readFile } from 'node:fs/promises'
import t from 'tap'
import { validateRuleSet } from '../src/index.ts'

// The README's examples must stay valid: every ```json block is a RuleSet or one or more rules.
t.test('README examples validate', async (t) => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!)
  t.ok(blocks.length >= 7, `found ${blocks.length} examples`)
  for (const text of blocks) {
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch {
      value = JSON.parse(`[${text}]`)
    }
    if (!Array.isArray(value) && (value as { version?: unknown }).version !== undefined) {
      t.doesNotThrow(() => validateRuleSet(value), text.slice(0, 60))
    } else {
      const rules = Array.isArray(value) ? value : [value]
      t.doesNotThrow(() => validateRuleSet({ version: 1, user: { header: 'x-user-id' }, rules, default: 'v1' }), text.slice(0, 60))
    }
  }
  const jsonc = readme.match(/```jsonc\n([\s\S]*?)```/)![1]!.replace(/\/\/.*$/gm, '').replace('/* ordered; the first rule that matches decides */', '')
  t.doesNotThrow(() => validateRuleSet(JSON.parse(jsonc)), 'the annotated document')
})
