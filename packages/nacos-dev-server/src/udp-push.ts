import { createSocket, type Socket } from 'node:dgram'
import { gzipSync } from 'node:zlib'
import type { ResolvedOptions } from './options.ts'

// SDKs Nacos pushes to (its ClientInfo): anything else gets no UDP subscription.
const PUSHABLE_AGENT = /^(Nacos-Java-Client|Nacos-Go-Client|Nacos-DNS|Nacos-C-Client|vip-client4cpp|Nacos-CSharp-Client):v\d/
const GZIP_FROM_BYTES = 1024

export function canPush (userAgent: string | undefined, clientVersion: string | undefined): boolean {
  // Nacos consults Client-Version only when User-Agent is empty.
  const agent = userAgent !== undefined && userAgent !== '' ? userAgent : clientVersion
  return agent !== undefined && PUSHABLE_AGENT.test(agent)
}

interface Subscriber {
  namespaceId: string
  service: string
  clusters: string[]
  ip: string
  port: number
  lastSeen: number
}

interface PendingAck {
  packet: Buffer
  ip: string
  port: number
  timer: NodeJS.Timeout
  resent: boolean
}

/** The data pushed for one subscriber: ServiceInfo without groupName, as Nacos sends it. */
export type PushData = (sub: { namespaceId: string; service: string; clusters: string[] }) => object

/**
 * UDP push of service changes to v1 clients that gave udpPort and clientIP: packets carry the
 * server's nanosecond clock as lastRefTime; an unanswered packet is resent once after the ack
 * timeout; a subscription lapses when its client stops listing the service.
 */
export class UdpPusher {
  readonly #subs = new Map<string, Subscriber>()
  readonly #pending = new Map<string, PendingAck>()
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #opts: ResolvedOptions['push']
  readonly #data: PushData
  readonly #socket: Socket
  acks = 0
  pushes = 0

  constructor (opts: ResolvedOptions['push'], data: PushData) {
    this.#opts = opts
    this.#data = data
    this.#socket = createSocket('udp4')
    this.#socket.on('message', (msg, from) => this.#onAck(msg, from.address, from.port))
    // A client that vanished makes sends fail with ICMP errors; that must not take the server down.
    this.#socket.on('error', () => {})
    this.#socket.unref()
  }

  async bind (host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#socket.once('error', reject)
      this.#socket.bind(0, host === '0.0.0.0' || host === '::' ? undefined : host, () => {
        this.#socket.off('error', reject)
        resolve()
      })
    })
  }

  subscribe (namespaceId: string, service: string, clusters: string[], ip: string, port: number): void {
    const key = `${namespaceId}\u0000${service}\u0000${ip}:${port}`
    const known = this.#subs.get(key)
    if (known !== undefined) {
      known.lastSeen = Date.now()
      known.clusters = clusters
      return
    }
    const sub = { namespaceId, service, clusters, ip, port, lastSeen: Date.now() }
    this.#subs.set(key, sub)
    this.#later(() => this.#push(sub))
  }

  /** A service changed: push it to every live subscriber, after Nacos's push delay. */
  changed (namespaceId: string, service: string): void {
    const now = Date.now()
    for (const [key, sub] of this.#subs) {
      if (now - sub.lastSeen > this.#opts.subscriberTtlMs) this.#subs.delete(key)
      else if (sub.namespaceId === namespaceId && sub.service === service) this.#later(() => this.#push(sub))
    }
  }

  subscriberCount (): number {
    return this.#subs.size
  }

  close (): void {
    for (const t of this.#timers) clearTimeout(t)
    for (const p of this.#pending.values()) clearTimeout(p.timer)
    this.#timers.clear()
    this.#pending.clear()
    this.#subs.clear()
    this.#socket.close()
  }

  #later (fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t)
      fn()
    }, this.#opts.delayMs)
    this.#timers.add(t)
  }

  #push (sub: Subscriber): void {
    const lastRefTime = process.hrtime.bigint().toString()
    const data = JSON.stringify(this.#data(sub))
    // lastRefTime is written as a bare integer that may exceed 2^53: built by hand, not JSON.stringify.
    const raw = Buffer.from(`{"type":"dom","data":${JSON.stringify(data)},"lastRefTime":${lastRefTime}}`)
    const packet = raw.length >= GZIP_FROM_BYTES ? gzipSync(raw) : raw
    const key = `${sub.ip}:${sub.port}:${lastRefTime}`
    const pending: PendingAck = { packet, ip: sub.ip, port: sub.port, resent: false, timer: this.#ackTimer(key) }
    this.#pending.set(key, pending)
    this.pushes++
    this.#send(pending)
  }

  #ackTimer (key: string): NodeJS.Timeout {
    return setTimeout(() => {
      const p = this.#pending.get(key)
      if (p === undefined) return
      if (p.resent) {
        this.#pending.delete(key)
        return
      }
      p.resent = true
      p.timer = this.#ackTimer(key)
      this.#send(p)
    }, this.#opts.ackTimeoutMs).unref()
  }

  #send (p: PendingAck): void {
    this.#socket.send(p.packet, p.port, p.ip, () => {})
  }

  #onAck (msg: Buffer, ip: string, port: number): void {
    // Read lastRefTime from the text: clients echo it as a string or a number, beyond 2^53 either way.
    const m = /"lastRefTime"\s*:\s*"?(\d+)"?/.exec(msg.toString('utf8'))
    if (m === null) return
    const key = `${ip}:${port}:${m[1]}`
    const p = this.#pending.get(key)
    if (p === undefined) return
    clearTimeout(p.timer)
    this.#pending.delete(key)
    this.acks++
  }
}
