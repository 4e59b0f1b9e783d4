#!/usr/bin/env node
// The `flowtag` CLI: rules in the config center, canaries, and which instance runs what.
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { NacosClient, presetClientOptions } from '@flowtag/nacos'
import { checkLeases, checkPublish, parseRuleSet, RulesError, type RuleSet } from '@flowtag/rules'
import { CanaryController, RULES_VERSION_METADATA } from './controller.ts'
import { startDashboard } from './dashboard.ts'
import { diffJson } from './diff.ts'
import { canaryKey } from './spec.ts'
import { readShadowReport, shadowReportText } from './shadow-report.ts'
import { StateStore, TERMINAL, type CanaryState } from './state.ts'

const USAGE = `usage: flowtag [options] <command>

  rules validate <file>           check a RuleSet file (exit 1 when invalid, paths listed)
  rules get                       print the RuleSet in force
  rules diff <file>               what publishing <file> would change
  rules publish <file>            validate and publish (refuses a version not above the one in force unless --force;
                                  --force also replaces an invalid document in Nacos, and says so)
  canary start <spec.json>        run a canary until it ends, live status; with --dashboard-port, serve the dashboard
  canary start --resume <service> take over a canary after a controller restart
  canary status <service>         state, step, convergence, last decisions (--watch: follow it);
                                  a lane canary is named lane:<lane> (its services' verdicts listed)
  canary promote|pause|resume|abort <service>
                                  tell the running controller; waits until it has applied the command
  instances <service>...          which instance runs which lane and applies which rule version
  shadow report <service>...      the top diverging shadow routes (@flowtag/shadow), read from the /metrics of
                                  every instance of the services that compare pairs (the edge, the callers);
                                  --url <metrics url> (repeatable) reads those instead of Nacos;
                                  --top <n> routes (default 10), --for <service> only pairs of that service

options:
  --nacos <host:port>     Nacos server (default $NACOS_SERVER_ADDR or 127.0.0.1:8848)
  --namespace <id>        Nacos namespace; --username/--password (or $NACOS_USERNAME/$NACOS_PASSWORD;
                          $NACOS_ACCESS_KEY/$NACOS_SECRET_KEY for signing)
  --data-id <id>          RuleSet data id (default flowtag-rules.json); --group <g> (default FLOWTAG)
  --json                  machine-readable output
  --dashboard-port <n>    canary start: serve the dashboard there; --token <t> protects its buttons
  --prometheus <url>      canary start: read the lanes' figures from this Prometheus instead of scraping
                          the instances (spec.prometheus.url); $FLOWTAG_PROMETHEUS_AUTHORIZATION is
                          sent as its Authorization header
  --timeout <ms>          how long a command waits for the controller (default 15000)

exit codes: 0 done; 1 invalid input or the canary failed (rolled back / aborted); 2 usage;
            3 Nacos or a file unreachable; 4 conflict (a canary already runs, none runs, or it ended);
            5 no controller applied the command in time`

const EXIT = { OK: 0, FAILED: 1, USAGE: 2, UNREACHABLE: 3, CONFLICT: 4, TIMEOUT: 5 } as const

class CliError extends Error {
  readonly exitCode: number
  /** The library's error code when the CLI re-words one of its errors (`--json`'s `code`). */
  readonly code: string | undefined
  constructor (exitCode: number, message: string, code?: string) {
    super(message)
    this.exitCode = exitCode
    this.code = code
  }
}

const { values: opts, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        nacos: { type: 'string' },
        namespace: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        'data-id': { type: 'string', default: 'flowtag-rules.json' },
        group: { type: 'string', default: 'FLOWTAG' },
        json: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        watch: { type: 'boolean', default: false },
        resume: { type: 'boolean', default: false },
        'dashboard-port': { type: 'string' },
        token: { type: 'string' },
        prometheus: { type: 'string' },
        url: { type: 'string', multiple: true },
        top: { type: 'string', default: '10' },
        for: { type: 'string' },
        'metrics-path': { type: 'string', default: '/metrics' },
        timeout: { type: 'string', default: '15000' },
        help: { type: 'boolean', short: 'h', default: false }
      }
    })
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`)
    process.exit(EXIT.USAGE)
  }
})()

const rules = { dataId: opts['data-id'], group: opts.group }
const tty = process.stdout.isTTY === true && !opts.json
let client: NacosClient | undefined

function nacos (): NacosClient {
  // --username/--password win; else NACOS_USERNAME/NACOS_PASSWORD and NACOS_ACCESS_KEY/NACOS_SECRET_KEY.
  // (--username alone takes its password from NACOS_PASSWORD, as it always did.)
  const given = opts.username === undefined && opts.password === undefined ? {} : { username: opts.username, password: opts.password ?? process.env.NACOS_PASSWORD }
  client ??= new NacosClient(presetClientOptions({
    serverAddr: opts.nacos ?? process.env.NACOS_SERVER_ADDR ?? '127.0.0.1:8848',
    ...(opts.namespace === undefined ? {} : { namespace: opts.namespace }),
    ...given,
    appName: 'flowtag-cli',
    configPollIntervalMs: 500,
    namingPollIntervalMs: 500
  }))
  return client
}

function out (human: string, json: unknown): void {
  process.stdout.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`)
}

async function readFileText (file: string | undefined): Promise<string> {
  if (file === undefined) throw new CliError(EXIT.USAGE, 'a file is needed')
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new CliError(EXIT.UNREACHABLE, `cannot read ${file}: ${(err as Error).message}`)
  }
}

function parseFile (text: string, file: string): RuleSet {
  try {
    return parseRuleSet(text, file)
  } catch (err) {
    throw new CliError(EXIT.FAILED, (err as Error).message)
  }
}

async function inForce (): Promise<RuleSet | undefined> {
  const raw = await nacos().config.get(rules.dataId, rules.group)
  return raw === undefined || raw === '' ? undefined : parseRuleSet(raw, `${rules.group}/${rules.dataId}`)
}

function line (s: CanaryState): string {
  const steps = s.spec.steps.map((w, i) => (i < s.step ? `[${w}]` : i === s.step ? `[${w}*]` : ` ${w} `)).join('')
  const last = s.history.at(-1)
  return `${canaryKey(s.spec)} ${s.spec.candidate}→ ${s.phase.padEnd(21)} step ${s.step + 1}/${s.spec.steps.length} ${steps} ${s.weight}%  ${last === undefined ? '' : `| ${last.event}: ${last.message}`}`
}

/** A lane canary's services at the latest check: verdict, both lanes' figures, the failing one marked. */
function laneTable (s: CanaryState): string {
  const lane = s.lane!
  const fig = (f: Record<string, unknown> | undefined) => f === undefined ? '-' : `${String(f.requests)} req, errors ${(Number(f.errorRate) * 100).toFixed(1)}%, p99 ${String(f.p99Text)}`
  const rows = lane.services.map((x) => `  ${x.service.padEnd(20)} ${x.kind.padEnd(8)} ${(x.verdict + (x.warming === undefined ? '' : ' (warming)')).padEnd(18)} ${fig(x.candidate).padEnd(36)} ${fig(x.stable).padEnd(36)}${lane.failing === x.service ? ' <- failed the lane' : ''}`)
  return [`lane ${s.spec.candidate} against ${s.spec.stable}: ${lane.services.length} services${lane.failing === undefined ? '' : `, ${lane.failing} failed`}`,
    `  ${'SERVICE'.padEnd(20)} ${'KIND'.padEnd(8)} ${'VERDICT'.padEnd(18)} ${'CANDIDATE'.padEnd(36)} ${'STABLE'.padEnd(36)}`, ...rows].join('\n')
}

/** What the user still has to do (or fix), in words; undefined when nothing. */
function leftToDo (s: CanaryState): string | undefined {
  if (s.phase === 'promoted' && s.retire !== undefined) {
    const r = s.retire
    return r.instances.length === 0
      ? `done: ${s.spec.candidate} is the stable lane of ${r.service}; no ${r.lane} instance is left. A next canary runs against stable ${s.spec.candidate}.`
      : `left to do: ${s.spec.candidate} is the stable lane of ${r.service}; retire its ${r.instances.length} ${r.lane} instance(s) (${r.instances.join(', ')}): no request is routed to them. A next canary runs against stable ${s.spec.candidate}.`
  }
  if (!TERMINAL.has(s.phase) && s.blockedBy !== undefined) return `blocked: rule "${s.blockedBy}" decides every request before the canary's split; no request can reach ${s.spec.candidate} until it is changed or disabled`
  return undefined
}

async function rulesCommand (sub: string | undefined, file: string | undefined): Promise<number> {
  if (sub === 'validate') {
    const rs = parseFile(await readFileText(file), file!)
    // As flowtag-rules validate: a lease that has already run out would be refused at publish.
    try {
      checkLeases(rs)
    } catch (err) {
      if (!(err instanceof RulesError)) throw err
      throw new CliError(EXIT.FAILED, `${file}: ${err.message}`, err.code)
    }
    out(`valid: version ${rs.version}, ${rs.rules.length} rules, ${Object.keys(rs.services).length} services`, { valid: true, version: rs.version })
    return EXIT.OK
  }
  if (sub === 'get') {
    const rs = await inForce()
    if (rs === undefined) throw new CliError(EXIT.FAILED, `no RuleSet at ${rules.group}/${rules.dataId}`)
    process.stdout.write(`${JSON.stringify(rs, null, 2)}\n`)
    return EXIT.OK
  }
  if (sub === 'diff' || sub === 'publish') {
    const next = parseFile(await readFileText(file), file!)
    // A document in Nacos that no instance accepts (they keep their last good set) is not "in force".
    let current: RuleSet | undefined
    let invalid: string | undefined
    try {
      current = await inForce()
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('FLOWTAG_NACOS') === true) throw err
      invalid = (err as Error).message
    }
    const changes = diffJson(current ?? {}, next)
    if (sub === 'diff') {
      if (invalid !== undefined) process.stderr.write(`the document at ${rules.group}/${rules.dataId} is invalid (${invalid}): the changes are against an empty RuleSet\n`)
      out(changes.length === 0 ? 'no change' : changes.map((c) => c.text).join('\n'), changes)
      return EXIT.OK
    }
    // The one publish policy (@flowtag/rules checkPublish), as flowtag-rules publish and the controller.
    try {
      checkPublish(next, current, { force: opts.force === true, ...(invalid === undefined ? {} : { currentInvalid: invalid }) })
    } catch (err) {
      if (!(err instanceof RulesError)) throw err
      // A lapsed lease is bad input (exit 1), as in validate; a version or an invalid document in force is a conflict (4).
      throw new CliError(err.code === 'FLOWTAG_RULES_LEASE_EXPIRED' ? EXIT.FAILED : EXIT.CONFLICT, `${rules.group}/${rules.dataId}: ${err.message}`, err.code)
    }
    await nacos().config.publish(rules.dataId, rules.group, JSON.stringify(next), 'json')
    const replaced = invalid === undefined ? '' : `; it replaced an invalid document (${invalid})`
    out(`published version ${next.version} (${changes.length} changes) to ${rules.group}/${rules.dataId}${replaced}`, { published: next.version, changes, ...(invalid === undefined ? {} : { replacedInvalid: invalid }) })
    return EXIT.OK
  }
  throw new CliError(EXIT.USAGE, `unknown rules command ${sub ?? ''}`)
}

async function canaryStart (arg: string | undefined): Promise<number> {
  const authorization = process.env.FLOWTAG_PROMETHEUS_AUTHORIZATION
  const options = { nacos: nacos(), ...(authorization === undefined || authorization === '' ? {} : { prometheusAuthorization: authorization }), logger: { info () {}, warn (obj: object, msg: string) { if (!opts.json) process.stderr.write(`${msg} ${JSON.stringify(obj)}\n`) } } }
  let controller: CanaryController
  try {
    if (opts.resume) {
      if (arg === undefined) throw new CliError(EXIT.USAGE, 'canary start --resume <service>')
      controller = await CanaryController.resume(arg, { ...options, group: rules.group })
    } else {
      const spec = JSON.parse(await readFileText(arg)) as Record<string, unknown>
      if (opts.prometheus !== undefined) spec.prometheus = { ...(spec.prometheus as object | undefined), url: opts.prometheus }
      controller = await CanaryController.start({ rules, ...spec }, options)
    }
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'FLOWTAG_CANARY_CONFLICT') throw new CliError(EXIT.CONFLICT, (err as Error).message, code)
    if (code === 'FLOWTAG_CANARY_BAD_OPTION' || code === 'FLOWTAG_CANARY_NO_RULES' || code === 'FLOWTAG_CANARY_NO_CANDIDATE' || err instanceof SyntaxError) throw new CliError(EXIT.FAILED, (err as Error).message, code)
    throw err
  }
  if (opts['dashboard-port'] !== undefined) {
    const d = await startDashboard({ controller, nacos: nacos(), port: Number(opts['dashboard-port']), ...(opts.token === undefined ? {} : { token: opts.token }) })
    process.stderr.write(`dashboard: ${d.url}#token=${d.token}\n`)
  }
  let seen = 0
  const show = (s: CanaryState) => {
    if (opts.json) {
      for (const e of s.history.slice(seen)) process.stdout.write(`${JSON.stringify(e)}\n`)
    } else if (tty) {
      process.stdout.write(`\r\x1b[2K${line(s).slice(0, (process.stdout.columns ?? 120) - 1)}`)
    } else {
      for (const e of s.history.slice(seen)) process.stdout.write(`${e.at} step ${e.step} ${e.weight}% ${e.event}: ${e.message}\n`)
    }
    seen = s.history.length
  }
  controller.onUpdate(show)
  show(controller.state)
  const stop = () => { void controller.close() }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const end = await controller.done
  if (tty) process.stdout.write('\n')
  if (!TERMINAL.has(end.phase)) {
    process.stderr.write(`controller stopped at ${end.phase}; \`flowtag canary start --resume ${canaryKey(end.spec)}\` takes over\n`)
    return EXIT.OK
  }
  if (!opts.json) process.stdout.write(`${canaryKey(end.spec)}: ${end.phase}\n`)
  return end.phase === 'promoted' ? EXIT.OK : EXIT.FAILED
}

async function canaryStatus (service: string | undefined): Promise<number> {
  if (service === undefined) throw new CliError(EXIT.USAGE, 'canary status <service>')
  const store = new StateStore(nacos().config, rules.group)
  for (;;) {
    const s = await store.load(service)
    if (s === undefined) throw new CliError(EXIT.CONFLICT, `no canary of ${service}`)
    if (opts.json) out('', s)
    else if (opts.watch && tty) process.stdout.write(`\r\x1b[2K${line(s).slice(0, (process.stdout.columns ?? 120) - 1)}`)
    else {
      out(`${line(s)}\nstarted ${new Date(s.startedAt).toISOString()}, updated ${new Date(s.updatedAt).toISOString()}, rule version ${s.ruleVersion ?? '-'}`, s)
      if (s.lane !== undefined) process.stdout.write(`${laneTable(s)}\n`)
      for (const e of s.history.slice(-8)) process.stdout.write(`  ${e.at} ${e.event}: ${e.message}\n`)
      const left = leftToDo(s)
      if (left !== undefined) process.stdout.write(`${left}\n`)
    }
    if (!opts.watch || TERMINAL.has(s.phase)) return s.phase === 'rolled-back' || s.phase === 'aborted' ? EXIT.FAILED : EXIT.OK
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
}

async function canaryCommand (command: 'promote' | 'pause' | 'resume' | 'abort', service: string | undefined): Promise<number> {
  if (service === undefined) throw new CliError(EXIT.USAGE, `canary ${command} <service>`)
  const store = new StateStore(nacos().config, rules.group)
  const before = await store.load(service)
  if (before === undefined) throw new CliError(EXIT.CONFLICT, `no canary of ${service}`)
  if (TERMINAL.has(before.phase)) throw new CliError(EXIT.CONFLICT, `the canary of ${service} has ended (${before.phase})`)
  const sent = await store.sendCommand(service, command, 'cli', Number(opts.timeout))
  const end = Date.now() + Number(opts.timeout)
  const applied = async (): Promise<boolean> => {
    const s = await store.load(service)
    if (s?.lastCommandId !== sent.id) return false
    out(line(s), { applied: command, state: s })
    return true
  }
  while (Date.now() < end) {
    if (await applied()) return EXIT.OK
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  // Taken back, so a controller started later does not apply it; it may have landed meanwhile.
  await store.withdrawCommand(service, sent)
  if (await applied()) return EXIT.OK
  throw new CliError(EXIT.TIMEOUT, `no controller applied "${command}" within ${opts.timeout} ms, so it is withdrawn (a controller started later will not apply it): is one running? (flowtag canary start --resume ${service})`)
}

async function instancesCommand (services: string[]): Promise<number> {
  if (services.length === 0) throw new CliError(EXIT.USAGE, 'instances <service>...')
  const rows: Array<Record<string, unknown>> = []
  for (const service of services) {
    for (const i of await nacos().naming.instances(service)) {
      rows.push({ service, instance: `${i.ip}:${i.port}`, lane: i.metadata.version ?? '-', ruleVersion: i.metadata[RULES_VERSION_METADATA] ?? '-', healthy: i.healthy, enabled: i.enabled, weight: i.weight })
    }
  }
  const rs = await inForce().catch(() => undefined)
  const text = [`rule version in force: ${rs?.version ?? '-'}`, 'SERVICE            INSTANCE               LANE    RULE  HEALTHY',
    ...rows.map((r) => `${String(r.service).padEnd(18)} ${String(r.instance).padEnd(22)} ${String(r.lane).padEnd(7)} ${String(r.ruleVersion).padEnd(5)} ${r.healthy}`)]
  out(text.join('\n'), { ruleVersion: rs?.version ?? null, instances: rows })
  return EXIT.OK
}

async function shadowCommand (sub: string | undefined, services: string[]): Promise<number> {
  if (sub !== 'report' || (services.length === 0 && opts.url === undefined)) throw new CliError(EXIT.USAGE, 'shadow report <service>... (or --url <metrics url>)')
  const top = Number(opts.top)
  if (!Number.isInteger(top) || top < 1) throw new CliError(EXIT.USAGE, '--top must be a whole number ≥ 1')
  const report = await readShadowReport(services.length === 0 ? { instances: async () => [] } : nacos().naming, {
    services,
    urls: opts.url ?? [],
    metricsPath: opts['metrics-path'],
    top,
    ...(opts.for === undefined ? {} : { service: opts.for })
  })
  for (const line of report.skipped) process.stderr.write(`flowtag: ${line}; left out\n`)
  if (report.of === 0) throw new CliError(EXIT.UNREACHABLE, `no instance of ${services.join(', ')} is registered`)
  if (report.read === 0) throw new CliError(EXIT.UNREACHABLE, `none of the ${report.of} metrics endpoints could be read`)
  out(`${shadowReportText(report.routes)}\n(${report.read} of ${report.of} processes read)`, { read: report.read, of: report.of, routes: report.routes })
  return EXIT.OK
}

async function main (): Promise<number> {
  const [area, sub, arg, ...rest] = positionals
  if (opts.help || area === undefined) {
    process.stdout.write(`${USAGE}\n`)
    return opts.help ? EXIT.OK : EXIT.USAGE
  }
  if (area === 'rules') return rulesCommand(sub, arg)
  if (area === 'instances') return instancesCommand(positionals.slice(1))
  if (area === 'shadow') return shadowCommand(positionals[1], positionals.slice(2))
  if (area === 'canary') {
    if (sub === 'start') return canaryStart(arg)
    if (sub === 'status') return canaryStatus(arg)
    if (sub === 'promote' || sub === 'pause' || sub === 'resume' || sub === 'abort') return canaryCommand(sub, arg)
  }
  void rest
  throw new CliError(EXIT.USAGE, `unknown command: ${positionals.join(' ')}\n\n${USAGE}`)
}

let code: number
try {
  code = await main()
} catch (err) {
  const e = err as Error & { code?: string }
  if (err instanceof CliError) code = err.exitCode
  else if (typeof e.code === 'string' && e.code.startsWith('FLOWTAG_NACOS')) code = EXIT.UNREACHABLE
  else code = EXIT.FAILED
  if (opts.json) process.stdout.write(`${JSON.stringify({ error: e.message, code: e.code ?? null, exitCode: code })}\n`)
  process.stderr.write(`flowtag: ${e.message}${typeof e.code === 'string' && e.code.startsWith('FLOWTAG_') ? ` (${e.code})` : ''}\n`)
}
await client?.close()
process.exit(code)
