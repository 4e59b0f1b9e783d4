// UDP push from v1 servers: each packet carries a ServiceInfo; every packet is acked to its sender
// with the same lastRefTime, which is the server's nanosecond clock and may exceed 2^53.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { gunzipSync } from 'node:zlib'
import type { Logger } from './logger.ts'

export interface PushPacket {
  type: string
  data: string
  /** Kept as the digit string it arrived as. */
  lastRefTime: string
}

type Reviver = (this: unknown, key: string, value: unknown, context: { source?: string }) => unknown

/** Parse a push packet, reading lastRefTime from its source text instead of through a JS number. */
export function parsePushPacket (buf: Buffer): PushPacket {
  const bytes = buf.length > 1 && buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf
  const reviver: Reviver = (key, value, context) => (key === 'lastRefTime' && typeof value === 'number' ? (context.source ?? String(value)) : value)
  const raw = JSON.parse(bytes.toString('utf8'), reviver as Parameters<typeof JSON.parse>[1]) as Record<string, unknown>
  return {
    type: String(raw.type ?? ''),
    data: typeof raw.data === 'string' ? raw.data : JSON.stringify(raw.data ?? ''),
    lastRefTime: String(raw.lastRefTime ?? '0')
  }
}

export class PushReceiver {
  readonly #socket: Socket
  readonly #logger: Logger
  readonly #onService: (data: string) => void
  readonly #dump: () => string
  #port: Promise<number>
  #closed = false

  constructor (host: string, logger: Logger, onService: (data: string) => void, dump: () => string) {
    this.#logger = logger
    this.#onService = onService
    this.#dump = dump
    this.#socket = createSocket('udp4')
    this.#socket.on('message', (msg, rinfo) => this.#handle(msg, rinfo))
    this.#port = new Promise((resolve, reject) => {
      this.#socket.once('error', reject)
      this.#socket.bind(0, host, () => {
        this.#socket.off('error', reject)
        this.#socket.on('error', (err) => this.#logger.warn({ err }, 'nacos udp socket error'))
        resolve(this.#socket.address().port)
      })
    })
    // Surfaced to whoever awaits port(); avoid an unhandled rejection if nobody does.
    this.#port.catch(() => {})
  }

  port (): Promise<number> {
    return this.#port
  }

  #handle (msg: Buffer, rinfo: RemoteInfo): void {
    let packet: PushPacket
    try {
      packet = parsePushPacket(msg)
    } catch (err) {
      this.#logger.warn({ err, from: rinfo.address }, 'nacos push packet unreadable')
      return
    }
    let ack: { type: string; lastRefTime: string; data: string }
    if (packet.type === 'dom' || packet.type === 'service') {
      ack = { type: 'push-ack', lastRefTime: packet.lastRefTime, data: '' }
    } else if (packet.type === 'dump') {
      ack = { type: 'dump-ack', lastRefTime: packet.lastRefTime, data: this.#dump() }
    } else {
      ack = { type: 'unknown-ack', lastRefTime: packet.lastRefTime, data: '' }
    }
    // Subscribers first, the ack right after: the ack does not depend on the outcome.
    if (ack.type === 'push-ack') {
      try {
        this.#onService(packet.data)
      } catch (err) {
        this.#logger.warn({ err }, 'nacos push data rejected')
      }
    }
    if (!this.#closed) this.#socket.send(JSON.stringify(ack), rinfo.port, rinfo.address)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#port.catch(() => undefined)
    await new Promise<void>((resolve) => {
      try {
        this.#socket.close(() => resolve())
      } catch {
        resolve()
      }
    })
  }
}
