// One gRPC connection to one Nacos server (client port = HTTP port + 1000): the server check
// that yields the connection id, the bi-stream opened with a ConnectionSetupRequest, answers to
// the requests the server pushes on that stream, and a health check that notices a dead peer.
import * as grpc from '@grpc/grpc-js'
import { NacosError, errorCodes } from './errors.ts'
import { biStreamPath, decodePayload, encodePayload, requestPath, type WireMessage } from './grpc-wire.ts'
import type { Logger } from './logger.ts'

/** Identifies this SDK to the server (some server paths branch on a versioned SDK name). */
export const CLIENT_VERSION = 'Nacos-Java-Client:v2.5.0'
/** gRPC client port = HTTP port + this (Nacos's fixed offset). */
export const GRPC_PORT_OFFSET = 1000
/** A connection idle (nothing received) this long is health-checked (Nacos's `connectionKeepAlive`, 5 s). */
const HEALTH_EVERY_MS = 5000
/**
 * Health-check attempts before a connection is taken for dead, each with its own deadline of
 * min(timeoutMs, 3 s): 1 + 3 retries, as Nacos's Java client (`healthCheckRetryTimes` 3,
 * `healthCheckTimeOut` 3 s). One late answer on a loaded machine is not a dead server, and
 * dropping a live connection loses the pushes in flight and redoes every subscription.
 */
const HEALTH_ATTEMPTS = 4
const SETUP_WAIT_MS = 3000
/**
 * The largest gRPC message sent or received by default: what Nacos itself uses, 10 MiB both in
 * its Java client (`nacos.remote.client.grpc.maxinbound.message.size`, DefaultGrpcClientConfig)
 * and in its server (`nacos.remote.server.grpc.sdk.max-inbound-message-size`,
 * GrpcServerConstants.DEFAULT_GRPC_MAX_INBOUND_MSG_SIZE, 2.5.0), where grpc-js would take 4 MiB.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024

/** Answers a server-pushed request (on `conn`); returns the response body (resultCode etc. are added). */
export type PushHandler = (body: Record<string, unknown>, conn: GrpcConnection) => Record<string, unknown> | undefined

export interface ConnectionOptions {
  host: string
  /** The server's HTTP port; gRPC is this + 1000. */
  port: number
  /** `naming` or `config`: the server keeps naming clients only for `naming` connections. */
  module: 'naming' | 'config'
  namespace: string
  /** Extra connection labels (AppName, app_<key>), next to `source` and `module`. */
  labels?: Record<string, string>
  timeoutMs: number
  /** Largest message sent or received (grpc-js channel options); @default DEFAULT_MAX_MESSAGE_BYTES */
  maxMessageBytes?: number
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
  /** Set up (open() done): from then on a failed request is classified, not taken as a dead connection. */
  #ready = false
  #upSince = 0
  /** When something last arrived on this connection (an answer or a push; ms since epoch): it is alive then. */
  #lastActive = 0
  /** A health check is running (the periodic one does not start another). */
  #checking = false
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
    const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    this.#client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': maxBytes,
      'grpc.max_send_message_length': maxBytes,
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

  /**
   * When the server answered this connection's server check (ms since epoch; 0 before): it has
   * run without a restart since then, or the connection would be gone.
   */
  get upSince (): number {
    return this.#upSince
  }

  /** Server check, bi-stream and set-up; rejects with FLOWTAG_NACOS_UNREACHABLE when the server does not speak gRPC. */
  async open (): Promise<void> {
    const check = await this.request('ServerCheckRequest', {}, {}, Math.min(this.#opts.timeoutMs, 3000))
    this.#upSince = Date.now()
    this.#connectionId = String(check.body.connectionId ?? '')
    const negotiates = check.body.supportAbilityNegotiation === true
    const stream = this.#client.makeBidiStreamRequest(biStreamPath, identity.serialize, identity.deserialize)
    this.#stream = stream
    let acked: (() => void) | undefined
    const setupAck = new Promise<void>((resolve) => {
      acked = resolve
    })
    stream.on('data', (bytes: Buffer) => {
      this.#lastActive = Date.now()
      let msg: WireMessage
      try {
        msg = decodePayload(bytes)
      } catch (err) {
        this.#opts.logger.warn({ server: this.origin, bytes: bytes.length, err }, 'nacos grpc push unreadable, ignored')
        return
      }
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
          labels: { ...this.#opts.labels, source: 'sdk', module: this.#opts.module },
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
      if (res.code === errorCodes.UNREACHABLE && i === 29) throw res
      await delay(20)
    }
    if (this.#closed) throw new NacosError(errorCodes.UNREACHABLE, `gRPC connection to ${this.origin} closed during set-up`)
    this.#ready = true
    this.#health = setInterval(() => void this.#checkHealth(), HEALTH_EVERY_MS)
    this.#health.unref()
  }

  /**
   * One unary call. Resolves with the decoded response; rejects with FLOWTAG_NACOS_UNREACHABLE on
   * transport errors, FLOWTAG_NACOS_AUTH on 403, FLOWTAG_NACOS_HTTP on other error responses,
   * FLOWTAG_NACOS_TOO_LARGE / FLOWTAG_NACOS_REQUEST_FAILED when this request failed but the
   * connection is fine (see `exchange`).
   */
  async request (type: string, body: Record<string, unknown>, headers: Record<string, string>, timeoutMs = this.#opts.timeoutMs): Promise<WireMessage> {
    const res = await this.exchange(type, body, headers, timeoutMs)
    const errorCode = Number(res.body.errorCode ?? 0)
    const resultCode = Number(res.body.resultCode ?? 200)
    if (res.type === 'ErrorResponse' || resultCode !== 200) {
      const message = `${type} to ${this.origin}: ${String(res.body.message ?? res.type)} (errorCode ${errorCode})`
      // 301: the server does not know this connection (restarted, or not set up yet): reconnect.
      if (errorCode === 301) throw new NacosError(errorCodes.UNREACHABLE, message)
      if (errorCode === 403) throw new NacosError(errorCodes.AUTH, message, { statusCode: 403 })
      throw new GrpcAnswerError(message, errorCode, res)
    }
    return res
  }

  /**
   * One unary call, answered as the server answered it (error responses included: `type`,
   * `resultCode`, `errorCode` as sent). A failure is the connection's (FLOWTAG_NACOS_UNREACHABLE:
   * the pool moves on, the session reconnects and redoes) only when the transport failed: the
   * channel is unavailable, the connection is closed or not set up yet, or it no longer answers a
   * health check. Anything else fails this request alone: a message over the size limit
   * (FLOWTAG_NACOS_TOO_LARGE, `MessageTooLargeError`), an unreadable answer or a timeout while
   * the connection still answers its health check (FLOWTAG_NACOS_REQUEST_FAILED).
   */
  async exchange (type: string, body: Record<string, unknown>, headers: Record<string, string>, timeoutMs = this.#opts.timeoutMs): Promise<WireMessage> {
    try {
      return await this.#unary(type, body, headers, timeoutMs)
    } catch (err) {
      throw await this.#classify(type, err as Error & { code?: number })
    }
  }

  /** The bare call: rejects with grpc-js's error, or the decoding error of an unreadable answer. */
  #unary (type: string, body: Record<string, unknown>, headers: Record<string, string>, timeoutMs: number): Promise<WireMessage> {
    const payload = encodePayload({ type, headers, body: { ...body, headers: {}, requestId: '', module: this.#opts.module } })
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(requestPath, id, id, payload, { deadline: Date.now() + timeoutMs }, (err, out) => {
        if (err !== null || out === undefined) {
          reject(err ?? new Error('no answer'))
          return
        }
        this.#lastActive = Date.now()
        try {
          resolve(decodePayload(out))
        } catch (decodeErr) {
          reject(new UnreadableAnswer(`unreadable answer (${out.length} bytes): ${(decodeErr as Error).message}`, { cause: decodeErr }))
        }
      })
    })
  }

  async #classify (type: string, err: Error & { code?: number }): Promise<NacosError> {
    const what = `${type} to ${this.origin}: ${err.message}`
    // Before set-up, after close, or the channel itself down: the connection's failure.
    if (!this.#ready) return new NacosError(errorCodes.UNREACHABLE, what, { cause: err })
    if (this.#closed || err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.CANCELLED) return new ConnectionLostError(what, err)
    // A size limit says nothing about the connection: that request alone fails.
    if (err.code === grpc.status.RESOURCE_EXHAUSTED) return new MessageTooLargeError(what, err)
    // Anything else (a timeout, an unreadable answer, an internal error): the connection is the
    // suspect only if it fails a health check too, as Nacos's Java client decides after a failed
    // request (RpcClient.switchServerAsyncOnRequestFail: health check first, switch only on failure).
    const sick = await this.#sickness()
    if (sick !== undefined) {
      this.close(`health check failed (${sick}) after ${type} failed: ${err.message}`)
      return new ConnectionLostError(what, err)
    }
    return new NacosError(errorCodes.REQUEST_FAILED, `${what} (the connection is healthy: this request alone failed)`, { cause: err })
  }

  /**
   * Why the connection is not healthy; undefined when it is. Sick: the server does not know it
   * (301), the channel is down, or HEALTH_ATTEMPTS health checks in a row got no answer in time
   * while nothing else arrived on the connection either (an answer or a push meanwhile shows a
   * live connection that is merely slow, as on a loaded machine).
   */
  async #sickness (): Promise<string | undefined> {
    let why = 'closed'
    for (let attempt = 1; attempt <= HEALTH_ATTEMPTS; attempt++) {
      if (this.#closed) return 'closed'
      const asked = Date.now()
      try {
        const res = await this.#unary('HealthCheckRequest', {}, {}, Math.min(this.#opts.timeoutMs, 3000))
        return Number(res.body.errorCode ?? 0) === 301 ? `${String(res.body.message ?? 'connection unknown to the server')} (errorCode 301)` : undefined
      } catch (err) {
        const e = err as Error & { code?: number }
        if (this.#closed) return 'closed'
        if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.CANCELLED) return e.message
        if (this.#lastActive >= asked) return undefined
        why = `${e.message} (${attempt} of ${HEALTH_ATTEMPTS} attempts)`
      }
    }
    return why
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
      body = handler?.(msg.body, this) ?? (msg.type === 'ClientDetectionRequest' ? {} : undefined)
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

  /** The periodic check: only a connection idle for HEALTH_EVERY_MS is asked (traffic shows it alive). */
  async #checkHealth (): Promise<void> {
    if (this.#closed || this.#checking || Date.now() - this.#lastActive < HEALTH_EVERY_MS) return
    this.#checking = true
    try {
      const sick = await this.#sickness()
      if (sick !== undefined) this.close(`health check failed: ${sick}`)
    } finally {
      this.#checking = false
    }
  }
}

/** A server's error answer that is not about auth or the connection (bad parameter, missing...). */
export class GrpcAnswerError extends NacosError {
  // Its own brand: FlowTagError's instanceof goes by brand, and NacosError's would match every NacosError.
  static override readonly brand: string = 'flowtag.nacos.grpc-answer'
  readonly errorCode: number
  readonly response: WireMessage
  constructor (message: string, errorCode: number, response: WireMessage) {
    super(errorCodes.HTTP, message)
    this.errorCode = errorCode
    this.response = response
  }
}

/**
 * FLOWTAG_NACOS_UNREACHABLE from a connection that was set up and then died under the call (the
 * server restarted or went away): the pool gives such a call one more round, on a new connection.
 */
export class ConnectionLostError extends NacosError {
  static override readonly brand: string = 'flowtag.nacos.connection-lost'
  constructor (message: string, cause: Error) {
    super(errorCodes.UNREACHABLE, message, { cause })
  }
}

/** A message over a gRPC size limit: its size and the limit, when known. */
export class MessageTooLargeError extends NacosError {
  static override readonly brand: string = 'flowtag.nacos.too-large'
  /** The message's size in bytes (or, when only that is known, the content's). */
  readonly bytes: number | undefined
  readonly limitBytes: number | undefined
  constructor (message: string, cause: Error, sizes: { bytes?: number | undefined; limitBytes?: number | undefined } = messageSizes(cause.message)) {
    super(errorCodes.TOO_LARGE, message, { cause })
    this.bytes = sizes.bytes
    this.limitBytes = sizes.limitBytes
  }
}

/** Sizes from the wordings of grpc-js and grpc-java ("larger than max (5000779 vs 4194304)", "exceeds maximum size 10485760: 12582912", "larger than 10485760"). */
function messageSizes (text: string): { bytes?: number; limitBytes?: number } {
  let m = /\((\d+) vs\.? (\d+)\)/.exec(text)
  if (m !== null) return { bytes: Number(m[1]), limitBytes: Number(m[2]) }
  m = /maximum size (\d+): (\d+)/.exec(text)
  if (m !== null) return { bytes: Number(m[2]), limitBytes: Number(m[1]) }
  m = /larger than (\d+)/.exec(text)
  return m === null ? {} : { limitBytes: Number(m[1]) }
}

/** An answer that does not decode as a Nacos Payload. */
class UnreadableAnswer extends Error {}

function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
