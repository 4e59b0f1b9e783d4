#!/usr/bin/env node
import { readFile, rename, writeFile } from 'node:fs/promises'
import { explain } from './evaluate.ts'
import { RulesError, errorCodes } from './errors.ts'
import type { Facts } from './facts.ts'
import { checkLeases, setLease } from './leases.ts'
import { checkPublish } from './publish-policy.ts'
import { lintRuleSet } from './lint.ts'
import { parseRuleSet } from './parse.ts'
import type { RuleSet } from './schema.ts'
import { promoteShadow } from './shadow.ts'
import { formatShadowReport, readShadowCounts } from './shadow-report.ts'

const USAGE = `usage: flowtag-rules validate <doc> [--now <RFC 3339>]
       flowtag-rules explain <doc> [--header name=value]... [--cookie name=value]... [--query name=value]... [--ip address]
       flowtag-rules publish <file> <nacos-doc> [--now <RFC 3339>] [--force]
       flowtag-rules lease <doc> <rule | service:lane> (--until <RFC 3339> | --clear) [--now <RFC 3339>]
       flowtag-rules shadow <doc> --metrics <url>[,<url>...]
       flowtag-rules promote <doc> [--now <RFC 3339>]
  <doc>: a file path, or nacos://[user:password@]host:port/<group>/<dataId>[?namespace=<id>]
  Nacos credentials: in the URL, else $NACOS_USERNAME/$NACOS_PASSWORD ($NACOS_ACCESS_KEY/$NACOS_SECRET_KEY)
  validate and publish refuse a lease that has run out (--now: the clock to judge by, default now);
  publish, lease and promote refuse a version not above the one in force, or replacing an invalid
  document (--force publishes anyway: the policy of \`flowtag rules publish\`, @flowtag/rules checkPublish);
  validate and publish warn (on stderr, without refusing) about a split with no key, weights finer than 0.01%,
  and lanes no service declares
  exit 0: done; 1: invalid (paths listed) or refused; 2: usage or I/O error
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

/** `--name value` flags of the commands other than explain; each allowed at most once. */
function flags (args: string[], allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!
    if (!allowed.includes(flag)) throw new UsageError(`unknown option ${flag}`)
    if (flag === '--clear' || flag === '--force') { out.set(flag, ''); continue }
    const value = args[++i]
    if (value === undefined) throw new UsageError(`${flag} needs a value`)
    out.set(flag, value)
  }
  return out
}

function clock (f: Map<string, string>): number {
  const text = f.get('--now')
  if (text === undefined) return Date.now()
  const ms = Date.parse(text)
  if (Number.isNaN(ms)) throw new UsageError(`--now: not a date: ${text}`)
  return ms
}

/** Where a document lives: a file, or a Nacos config entry. */
interface Doc {
  name: string
  read(): Promise<string>
  /** What the document holds, undefined when there is none (read() throws then); other failures throw. */
  peek(): Promise<string | undefined>
  write(text: string): Promise<void>
  close(): Promise<void>
}

async function openDoc (where: string): Promise<Doc> {
  if (!where.startsWith('nacos://')) {
    return {
      name: where,
      read: () => readFile(where, 'utf8'),
      peek: () => readFile(where, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined
        throw err
      }),
      async write (text) {
        const tmp = `${where}.${process.pid}.tmp`
        await writeFile(tmp, text, 'utf8')
        await rename(tmp, where)
      },
      async close () {}
    }
  }
  const url = new URL(where)
  const [, group, dataId] = url.pathname.split('/').map(decodeURIComponent)
  if (group === undefined || group === '' || dataId === undefined || dataId === '') throw new UsageError(`${where}: expected nacos://host:port/<group>/<dataId>`)
  // @flowtag/nacos is an optional peer: only these commands need it
  const { NacosClient, presetClientOptions } = await import('@flowtag/nacos')
  // Credentials in the URL win; else NACOS_USERNAME/NACOS_PASSWORD (and NACOS_ACCESS_KEY/NACOS_SECRET_KEY).
  const auth = url.username === '' ? {} : { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
  const client = new NacosClient(presetClientOptions({ serverAddr: url.host, namespace: url.searchParams.get('namespace') ?? '', appName: 'flowtag-rules', ...auth }))
  return {
    name: `nacos ${group}/${dataId}`,
    async read () {
      const text = await client.config.get(dataId, group)
      if (text === undefined) throw new Error(`no document ${group}/${dataId}`)
      return text
    },
    peek: () => client.config.get(dataId, group),
    write: (text) => client.config.publish(dataId, group, text, 'json'),
    close: () => client.close()
  }
}

function report (name: string, err: RulesError): number {
  process.stderr.write(`${name}: ${err.code === errorCodes.INVALID ? 'invalid rule set' : `refused (${err.code})`}\n`)
  for (const i of err.issues) process.stderr.write(`  ${i.path}: ${i.message}\n`)
  return 1
}

async function load (doc: Doc): Promise<RuleSet | number> {
  let text: string
  try {
    text = await doc.read()
  } catch (err) {
    process.stderr.write(`flowtag-rules: cannot read ${doc.name}: ${(err as Error).message}\n`)
    return 2
  }
  try {
    return parseRuleSet(text, doc.name)
  } catch (err) {
    if (!(err instanceof RulesError)) throw err
    return report(doc.name, err)
  }
}

/** The publish policy against what `doc` holds now (checkPublish), then write. */
async function store (doc: Doc, rs: RuleSet, now: number, force = false): Promise<number> {
  try {
    const held = await inForce(doc)
    checkPublish(rs, held.current, { now, force, ...(held.invalid === undefined ? {} : { currentInvalid: held.invalid }) })
  } catch (err) {
    if (!(err instanceof RulesError)) throw err
    return report(doc.name, err)
  }
  await doc.write(`${JSON.stringify(rs, null, 2)}\n`)
  return 0
}

/** What a destination holds: a RuleSet, nothing (no document yet), or an invalid document. */
async function inForce (doc: Doc): Promise<{ current?: RuleSet, invalid?: string }> {
  const text = await doc.peek()
  if (text === undefined || text.trim() === '') return {}
  try {
    return { current: parseRuleSet(text, doc.name) }
  } catch (err) {
    if (!(err instanceof RulesError)) throw err
    return { invalid: err.message }
  }
}

/** Prints the set's warnings (lintRuleSet) on stderr; they never change the exit code. */
function warn (name: string, rs: RuleSet): void {
  for (const w of lintRuleSet(rs)) process.stderr.write(`${name}: warning: ${w.path}: ${w.message}\n`)
}

const summary = (rs: RuleSet) => `version ${rs.version}, ${rs.rules.length} rules, ${Object.keys(rs.services).length} services, default lane ${rs.default}${rs.shadow === undefined ? '' : `, shadow version ${rs.shadow.version}`}`

async function run (command: string, where: string, rest: string[]): Promise<number> {
  if (command === 'explain') {
    const facts = factsFrom(rest)
    const doc = await openDoc(where)
    try {
      const rs = await load(doc)
      if (typeof rs === 'number') return rs
      const e = explain(rs, facts)
      process.stdout.write(`lane ${e.decision.tag}: ${e.decision.reason} (version ${e.version})\n`)
      for (const s of e.steps) process.stdout.write(`  ${s.matched ? 'match' : 'skip '} rules.${s.index} ${s.rule}: ${s.detail}\n`)
      return 0
    } finally { await doc.close() }
  }
  let target: string | undefined
  let to: string | undefined
  if (command === 'lease') [target, ...rest] = rest
  if (command === 'publish') [to, ...rest] = rest
  if ((command === 'lease' && target === undefined) || (command === 'publish' && to === undefined)) throw new UsageError(`${command}: missing argument`)
  const f = flags(rest, {
    validate: ['--now'], publish: ['--now', '--force'], promote: ['--now'], lease: ['--until', '--clear', '--now'], shadow: ['--metrics']
  }[command] ?? [])
  const now = clock(f)
  const doc = await openDoc(where)
  try {
    const rs = await load(doc)
    if (typeof rs === 'number') return rs
    switch (command) {
      case 'validate': {
        try {
          checkLeases(rs, now)
        } catch (err) {
          if (!(err instanceof RulesError)) throw err
          return report(doc.name, err)
        }
        warn(doc.name, rs)
        process.stdout.write(`${doc.name}: valid (${summary(rs)})\n`)
        return 0
      }
      case 'publish': {
        const dest = await openDoc(to!)
        warn(doc.name, rs)
        try {
          const code = await store(dest, rs, now, f.has('--force'))
          if (code === 0) process.stdout.write(`published to ${dest.name} (${summary(rs)})\n`)
          return code
        } finally { await dest.close() }
      }
      case 'lease': {
        const until = f.get('--until')
        if ((until === undefined) === !f.has('--clear')) throw new UsageError('lease: give exactly one of --until <RFC 3339> or --clear')
        const next = parseRuleSet(JSON.stringify(setLease(rs, target!, until)), doc.name) // revalidated: --until must be RFC 3339
        const code = await store(doc, next, now)
        if (code === 0) process.stdout.write(`${target}: lease ${until === undefined ? 'cleared' : `until ${until}`} (version ${next.version}) in ${doc.name}\n`)
        return code
      }
      case 'promote': {
        const next = promoteShadow(rs)
        const code = await store(doc, next, now)
        if (code === 0) process.stdout.write(`shadow promoted to live in ${doc.name} (${summary(next)})\n`)
        return code
      }
      case 'shadow': {
        const urls = f.get('--metrics')?.split(',').filter((u) => u !== '')
        if (urls === undefined || urls.length === 0) throw new UsageError('shadow: --metrics <url>[,<url>...] is required')
        if (rs.shadow === undefined) {
          process.stderr.write(`${doc.name}: no shadow rule set (version ${rs.version})\n`)
          return 1
        }
        const counts = await readShadowCounts(urls)
        process.stdout.write(formatShadowReport(rs, counts))
        return 0
      }
    }
    throw new UsageError(`unknown command ${command}`)
  } finally { await doc.close() }
}

const COMMANDS = ['validate', 'explain', 'publish', 'lease', 'shadow', 'promote']

async function main (argv: string[]): Promise<number> {
  const [command, where, ...rest] = argv
  if (command === '--help' || command === '-h') { process.stdout.write(USAGE); return 0 }
  if (command === undefined || !COMMANDS.includes(command) || where === undefined) {
    process.stderr.write(USAGE)
    return 2
  }
  try {
    return await run(command, where, rest)
  } catch (err) {
    if (err instanceof RulesError) return report(where, err)
    if (!(err instanceof UsageError)) {
      process.stderr.write(`flowtag-rules: ${(err as Error).message}\n`)
      return 2
    }
    process.stderr.write(`flowtag-rules: ${err.message}\n${USAGE}`)
    return 2
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`flowtag-rules: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 2
})
