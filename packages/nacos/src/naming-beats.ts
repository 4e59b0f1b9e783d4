// The beat loop of own ephemeral instances: one ticker per instance, at the pace the server asks
// for, backing off while the cluster is unreachable, and registering again when the server has
// forgotten the instance or answers again after an outage.
import type { ClientContext } from './context.ts'
import { Ticker } from './ticker.ts'
import { grouped, type InstanceSpec } from './transport.ts'

interface Registration {
  spec: InstanceSpec
  ticker: Ticker
  intervalMs: number
  light: boolean
  failures: number
  stopped: boolean
  /** Register (not beat) on the next run: the server answers again and may have lost us. */
  mustRegister: boolean
}

export function regKey (s: Pick<InstanceSpec, 'group' | 'service' | 'ip' | 'port' | 'clusterName'>): string {
  return `${s.group}@@${s.service}#${s.ip}#${s.port}#${s.clusterName}`
}

export class BeatLoop {
  readonly #ctx: ClientContext
  readonly #registrations = new Map<string, Registration>()
  #reregistered = 0

  constructor (ctx: ClientContext) {
    this.#ctx = ctx
  }

  /** Own instances registered again because the server had lost them or answered again after an outage. */
  get reregistered (): number {
    return this.#reregistered
  }

  has (key: string): boolean {
    return this.#registrations.has(key)
  }

  /** The instances kept registered (beating) of one service (`group@@service`). */
  specsOf (name: string): InstanceSpec[] {
    return [...this.#registrations.values()].filter((r) => grouped(r.spec.group, r.spec.service) === name).map((r) => r.spec)
  }

  /** Start beating for a just-registered ephemeral instance. */
  start (spec: InstanceSpec): void {
    const configured = Number(spec.metadata['preserved.heart.beat.interval'])
    const reg: Registration = {
      spec,
      ticker: new Ticker(() => this.#beat(reg)),
      intervalMs: configured > 0 ? configured : this.#ctx.options.beatIntervalMs,
      light: false,
      failures: 0,
      stopped: false,
      mustRegister: false
    }
    this.#registrations.set(regKey(spec), reg)
    if (!this.#ctx.closing.aborted) reg.ticker.schedule(reg.intervalMs)
  }

  /** Stop beating; resolves once a (re-)registration in flight has landed. */
  async stop (key: string): Promise<void> {
    const reg = this.#registrations.get(key)
    if (reg === undefined) return
    reg.stopped = true
    reg.ticker.stop()
    this.#registrations.delete(key)
    await reg.ticker.idle()
  }

  /** Later beats carry the new values. */
  update (spec: InstanceSpec): void {
    const reg = this.#registrations.get(regKey(spec))
    if (reg !== undefined) reg.spec = spec
  }

  /** A server answers after every server had failed: register own instances again right away (back-offs reset). */
  recover (): void {
    for (const reg of this.#registrations.values()) {
      reg.mustRegister = true
      reg.failures = 0
      reg.light = false
      reg.ticker.kick()
    }
  }

  close (): void {
    for (const key of [...this.#registrations.keys()]) void this.stop(key)
  }

  /** One beat (or registration); resolves with the delay until the next. */
  async #beat (reg: Registration): Promise<number> {
    const ns = this.#ctx.options.namespace
    try {
      if (reg.mustRegister) {
        await this.#reregister(reg, 'nacos answers again')
        reg.mustRegister = false
        reg.failures = 0
        return reg.intervalMs
      }
      const res = await this.#ctx.pool.exec('beat', (t, r) => t.beat(r, ns, reg.spec, reg.light))
      if (reg.stopped) return reg.intervalMs
      if (res.intervalMs !== undefined) reg.intervalMs = res.intervalMs
      reg.light = res.lightBeatEnabled
      reg.failures = 0
      // The server forgot us (restart, expiry, failover): register again.
      if (res.notFound) await this.#reregister(reg, 'the server no longer knew it')
      return reg.intervalMs
    } catch (err) {
      if (reg.stopped || this.#ctx.closing.aborted) return reg.intervalMs
      reg.failures++
      reg.light = false
      // Back off while the cluster is unreachable, but never so long that the instance expires for
      // good; the pool's recovery probe cuts the wait short when a server answers again.
      const next = Math.min(reg.intervalMs * 2 ** Math.min(reg.failures, 3), Math.max(reg.intervalMs, 15_000))
      this.#ctx.logger.warn({ err, failures: reg.failures, retryInMs: next }, 'nacos beat failed')
      return next
    }
  }

  async #reregister (reg: Registration, why: string): Promise<void> {
    await this.#ctx.pool.exec('re-register instance', (t, r) => t.register(r, this.#ctx.options.namespace, reg.spec))
    this.#reregistered++
    this.#ctx.logger.info({ service: grouped(reg.spec.group, reg.spec.service), ip: reg.spec.ip, port: reg.spec.port, why }, 'nacos instance re-registered')
  }
}
