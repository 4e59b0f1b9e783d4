#!/usr/bin/env node
import { readFile } from 'node:fs/promises'
import { explain } from './evaluate.ts'
import { RulesError } from './errors.ts'
import type { Facts } from './facts.ts'
import { parseRuleSet } from './parse.ts'
import type { RuleSet } from './schema.ts'

const USAGE = `usage: flowtag-rules validate <file>
       flowtag-rules explain <file> [--header name=value]... [--cookie name=value]... [--query name=value]... [--ip address]
  exit 0: valid; 1: invalid (paths listed); 2: usage or I/O error
`

class UsageError extends Error {}

function factsFrom (args: string[]): Facts {
  const headers: Record<string, string> = {}
  const cookies: Record<string, string> = {}
  const query: Record<string, string> = {}
  let ip: string | undefined
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i]!
    const value = args[i + 1]
    if (value === undefined) throw new UsageError(`${flag} needs a value`)
    if (flag === '--ip') { ip = value; continue }
    const eq = value.indexOf('=')
    if (eq <= 0) throw new UsageError(`${flag} expects name=value`)
    const name = value.slice(0, eq)
    const v = value.slice(eq + 1)
    if (flag === '--header') headers[name.toLowerCase()] = v
    else if (flag === '--cookie') cookies[name] = v
    else if (flag === '--query') query[name] = v
    else throw new UsageError(`unknown option ${flag}`)
  }
  return { headers, cookies, query, ip }
}

async function load (file: string): Promise<RuleSet | number> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    process.stderr.write(`flowtag-rules: cannot read ${file}: ${(err as Error).message}\n`)
    return 2
  }
  try {
    return parseRuleSet(text, file)
  } catch (err) {
    if (!(err instanceof RulesError)) throw err
    process.stderr.write(`${file}: invalid rule set\n`)
    for (const i of err.issues) process.stderr.write(`  ${i.path}: ${i.message}\n`)
    return 1
  }
}

async function main (argv: string[]): Promise<number> {
  const [command, file, ...rest] = argv
  if (command === '--help' || command === '-h') { process.stdout.write(USAGE); return 0 }
  if ((command !== 'validate' && command !== 'explain') || file === undefined || (command === 'validate' && rest.length > 0)) {
    process.stderr.write(USAGE)
    return 2
  }
  let facts: Facts = { headers: {} }
  try {
    if (command === 'explain') facts = factsFrom(rest)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`flowtag-rules: ${err.message}\n${USAGE}`)
    return 2
  }
  const rs = await load(file)
  if (typeof rs === 'number') return rs
  if (command === 'validate') {
    process.stdout.write(`${file}: valid (version ${rs.version}, ${rs.rules.length} rules, ${Object.keys(rs.services).length} services, default lane ${rs.default})\n`)
    return 0
  }
  const e = explain(rs, facts)
  process.stdout.write(`lane ${e.decision.tag}: ${e.decision.reason} (version ${e.version})\n`)
  for (const s of e.steps) process.stdout.write(`  ${s.matched ? 'match' : 'skip '} rules.${s.index} ${s.rule}: ${s.detail}\n`)
  return 0
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`flowtag-rules: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 2
})
