// One gRPC connection to one Nacos server (client port = HTTP port + 1000): the server check
// that yields the connection id, the bi-stream opened with a ConnectionSetupRequest, answers to
// the requests the server pushes on that stream, and a health check that notices a dead peer.
import * as grpc from '@grpc/grpc-js'
import { NacosError } from './errors.ts'
import { biStreamPath, decodePayload, encodePayload, requestPath, type WireMessage } from './grpc-wire.ts'
import type { Logger } from './logger.ts'

/** Identifies this SDK to the server (some server paths branch on a versioned SDK name). */
export const CLIENT_VERSION = 'Nacos-Java-Client:v2.5.0'
/** gRPC client port = HTTP port + this (Nacos's fixed offset). */
export const GRPC_PORT_OFFSET = 1000
const HEALTH_EVERY_MS = 5000
const SETUP_WAIT_MS = 3000

/** Answers a server-pushed request; returns the response body (resultCode etc. are added). */
export type PushHandler = (body: Record<string, unknown>) => Record<string, unknown> | undefined

export interface ConnectionOptions {
  host: string
  /** The server's HTTP port; gRPC is this + 1000. */
  port: number
  /** `naming` or `config`: the server keeps naming clients only for `naming` connections. */
  module: 'naming' | 'config'
  namespace: string
  timeoutMs: number
  logger: Logger
  handlers: Record<string, PushHandler>
  /** Called once when the connection is lost (stream ended, health check failed, reset asked). */
  onClose: (why: string) => void
}

const id = (b: Buffer): Buffer => b
const identity = { serialize: id, deserialize: id }

export class GrpcConnection {
  /** `host:grpcPort`, for logs. */
  readonly origin: string
  /** `host:httpPort` of the server, as the pool knows it. */
  readonly server: string
  #client: grpc.Client
  #stream: grpc.ClientDuplexStream<Buffer, Buffer> | undefined
  #health: NodeJS.Timeout | undefined
  #closed = false
  #connectionId = ''
  readonly #opts: ConnectionOptions

  constructor (opts: ConnectionOptions) {
    this.#opts = opts
    const target = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port + GRPC_PORT_OFFSET}`
    this.origin = target
    this.server = `${opts.host}:${opts.port}`
    // The 5 s health check notices a dead peer. HTTP/2 keepalive pings stay rarer than Nacos's
    // permitKeepAliveTime (5 min): pinging more often gets the connection closed with GOAWAY
    // too_many_pings. No retries inside grpc-js: the session decides where to go next.
    this.#client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 360_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.enable_retries': 0,
      // Nacos identifies a client by its TCP connection: grpc-js must not share one between the
      // naming and config clients (or after a reconnect) as it does by default.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000
    })
  }

  get connectionId (): string {
    return this.#connectionId
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Server check, bi-stream and set-up; rejects with FLOWTAG_NACOS_UNREACHABLE when the server does not speak gRPC. */
  async open (): Promise<void> {
    const check = await this.request('ServerCheckRequest', {}, {}, Math.min(this.#opts.timeoutMs, 3000))
    this.#connectionId = String(check.body.connectionId ?? '')
    const negotiates = check.body.supportAbilityNegotiation === true
    const stream = this.#client.makeBidiStreamRequest(biStreamPath, identity.serialize, identity.deserialize)
    this.#stream = stream
    let acked: (() => void) | undefined
    const setupAck = new Promise<void>((resolve) => {
      acked = resolve
    })
    stream.on('data', (bytes: Buffer) => {
      const msg = decodePayload(bytes)
      if (msg.type === 'SetupAckRequest') acked?.()
      else this.#answer(msg)
    })
    stream.on('error', (err: Error) => this.close(`stream error: ${err.message}`))
    stream.on('end', () => this.close('stream ended by the server'))
    stream.write(
      encodePayload({
        type: 'ConnectionSetupRequest',
        headers: {},
        body: {
          clientVersion: CLIENT_VERSION,
          tenant: this.#opts.namespace,
          labels: { source: 'sdk', module: this.#opts.module },
          // An (empty) ability table asks a negotiating server (2.3+) for a SetupAckRequest:
          // the connection is registered once it arrives.
          ...(negotiates ? { abilityTable: {} } : {}),
          headers: {}
        }
      })
    )
    if (negotiates) await Promise.race([setupAck, delay(SETUP_WAIT_MS)])
    // Without negotiation (or without an ack) the health check tells when the server registered us.
    for (let i = 0; i < 30 && !this.#closed; i++) {
      const res = await this.request('HealthCheckRequest', {}, {}).catch((err: unknown) => err as NacosError)
      if (!(res instanceof Error)) break
      if (res.code === 'FLOWTAG_NACOS_UNREACHABLE' && i === 29) throw res
      await delay(20)
    }
    if (this.#closed) throw new NacosError('FLOWTAG_NACOS_UNREACHABLE', `gRPC connection to ${this.origin} closed during set-up`)
    this.#health = setInterval(() => void this.#checkHealth(), HEALTH_EVERY_MS)
    this.#health.unref()
  }

  /**
   * One unary call. Resolves with the decoded response; rejects with FLOWTAG_NACOS_UNREACHABLE on
   * transport errors, FLOWTAG_NACOS_AUTH on 403, FLOWTAG_NACOS_HTTP on other error responses.
   */
  async request (type: string, body: Record<string, unknown>, headers: Record<string, string>, timeoutMs = this.#opts.timeoutMs): Promise<WireMessage> {
    const res = await this.exchange(type, body, headers, timeoutMs)
    const errorCode = Number(res.body.errorCode ?? 0)
    const resultCode = Number(res.body.resultCode ?? 200)
    if (res.type === 'ErrorResponse' || resultCode !== 200) {
      const message = `${type} to ${this.origin}: ${String(res.body.message ?? res.type)} (errorCode ${errorCode})`
      // 301: the server does not know this connection (restarted, or not set up yet): reconnect.
      if (errorCode === 301) throw new NacosError('FLOWTAG_NACOS_UNREACHABLE', message)
      if (errorCode === 403) throw new NacosError('FLOWTAG_NACOS_AUTH', message, { statusCode: 403 })
      throw new GrpcAnswerError(message, errorCode, res)
    }
    return res
  }

  /**
   * One unary call, answered as the server answered it (error responses included: `type`,
   * `resultCode`, `errorCode` as sent). Rejects with FLOWTAG_NACOS_UNREACHABLE on transport errors only.
   */
  exchange (type: string, body: Record<string, unknown>, headers: Record<string, string>, timeoutMs = this.#opts.timeoutMs): Promise<WireMessage> {
    const payload = encodePayload({ type, headers, body: { ...body, headers: {}, requestId: '', module: this.#opts.module } })
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(requestPath, id, id, payload, { deadline: Date.now() + timeoutMs }, (err, out) => {
        if (err !== null || out === undefined) {
          reject(new NacosError('FLOWTAG_NACOS_UNREACHABLE', `${type} to ${this.origin}: ${err?.message ?? 'no answer'}`, { cause: err }))
          return
        }
        resolve(decodePayload(out))
      })
    })
  }

  /** Ends the stream and the channel; `onClose` runs once. */
  close (why = 'closed by the client'): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#health)
    this.#stream?.removeAllListeners('data')
    this.#stream?.on('error', () => {})
    this.#stream?.cancel()
    this.#client.close()
    this.#opts.onClose(why)
  }

  #answer (msg: WireMessage): void {
    const requestId = msg.body.requestId
    const handler = this.#opts.handlers[msg.type]
    let body: Record<string, unknown> | undefined
    try {
      body = handler?.(msg.body) ?? (msg.type === 'ClientDetectionRequest' ? {} : undefined)
    } catch (err) {
      this.#opts.logger.error({ type: msg.type, err }, 'nacos grpc push handler threw')
      body = undefined
    }
    if (body === undefined) {
      if (handler === undefined) this.#opts.logger.debug({ type: msg.type }, 'nacos grpc push of an unknown type ignored')
      return
    }
    const type = msg.type.replace(/Request$/, 'Response')
    this.#stream?.write(encodePayload({ type, headers: {}, body: { resultCode: 200, errorCode: 0, success: true, ...body, requestId } }))
  }

  async #checkHealth (): Promise<void> {
    if (this.#closed) return
    try {
      await this.request('HealthCheckRequest', {}, {}, Math.min(this.#opts.timeoutMs, 3000))
    } catch (err) {
      if ((err as NacosError).code === 'FLOWTAG_NACOS_UNREACHABLE') this.close(`health check failed: ${(err as Error).message}`)
    }
  }
}

/** A server's error answer that is not about auth or the connection (bad parameter, missing...). */
export class GrpcAnswerError extends NacosError {
  readonly errorCode: number
  readonly response: WireMessage
  constructor (message: string, errorCode: number, response: WireMessage) {
    super('FLOWTAG_NACOS_HTTP', message)
    this.errorCode = errorCode
    this.response = response
  }
}

function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
