// A gRPC server in lanes (`@flowtag/grpc/server`): every handler runs inside the flow its call's
// metadata carries (the FlowTagger of @flowtag/context in service mode: the same trust policy
// as the HTTP service plugin), the standard grpc.health.v1 service answers Kubernetes probes,
// and the instance registers in Nacos (metadata version, protocol=grpc) once bound. close()
// deregisters, waits drainMs while still serving, drains in-flight calls, then shuts down.
import { Server, ServerCredentials, type Metadata, type ServerOptions, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js'
import type { Meter } from '@opentelemetry/api'
import { HealthImplementation } from 'grpc-health-check'
import { z } from 'zod'
import { FlowTagger, type FlowTagOptions } from '@flowtag/context'
import { badOption, describeBadOption } from '@flowtag/errors'
import { NacosRegistration, type NacosClient, type NacosRegistrationOptions } from '@flowtag/nacos'
import { errorCodes, GrpcError } from './errors.ts'
import { ServerCallMetrics } from './server-metrics.ts'

const PKG = '@flowtag/grpc'

export const grpcServerOptionsSchema = z.strictObject({
  /** The Nacos client to register with; none: no registration (tests, fixed addresses). */
  nacos: z.custom<NacosClient>((v) => typeof v === 'object' && v !== null && typeof (v as NacosClient).naming === 'object', { message: 'expected a NacosClient' }).optional(),
  /** NacosRegistration options (service, version, weight, drainMs, ...); `metadata.protocol` is set to `grpc`. */
  registration: z.custom<NacosRegistrationOptions>((v) => typeof v === 'object' && v !== null && typeof (v as { service?: unknown }).service === 'string', { message: 'expected registration options with a service name' }).optional(),
  /** Trust policy for incoming tags (`trust`, `logger`, `otel` of @flowtag/context's service mode). */
  flow: z.custom<Omit<FlowTagOptions, 'mode' | 'rules'>>((v) => typeof v === 'object' && v !== null, { message: 'expected FlowTag options' }).default({}),
  /** Options of the @grpc/grpc-js Server. */
  server: z.custom<ServerOptions>((v) => typeof v === 'object' && v !== null, { message: 'expected grpc-js ServerOptions' }).default({}),
  /** How long close() lets in-flight calls finish before cancelling them, in ms. */
  shutdownTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
  /**
   * Where `rpc.server.call.duration` (per lane, method and status code) is recorded; `false`:
   * nowhere. @default the global MeterProvider's meter (no-ops until the app installs one)
   */
  meter: z.custom<Meter | false>((v) => v === false || (typeof v === 'object' && v !== null && typeof (v as Meter).createHistogram === 'function'), { message: 'expected an OpenTelemetry Meter or false' }).optional()
})

export type FlowTagGrpcServerOptions = z.input<typeof grpcServerOptionsSchema>

/**
 * ```ts
 * const app = new FlowTagGrpcServer({ nacos, registration: { service: 'inventory-service', version: 'v2', drainMs: 2000 } })
 * app.addService(InventoryService, { check: (call, cb) => cb(null, { lane: currentTag() }) })
 * const port = await app.listen('0.0.0.0:0')
 * process.on('SIGTERM', () => app.close())
 * ```
 * @throws {GrpcError} `FLOWTAG_GRPC_BAD_OPTION` naming the bad field.
 */
export class FlowTagGrpcServer {
  /** The underlying grpc-js server (add interceptors through `options.server`). */
  readonly server: Server
  /** grpc.health.v1: `''` (the whole server) and every added service; SERVING once listening. */
  readonly health: HealthImplementation
  readonly #tagger: FlowTagger
  readonly #registration: NacosRegistration | undefined
  readonly #shutdownTimeoutMs: number
  readonly #services: string[] = []
  readonly #metrics: ServerCallMetrics | undefined
  #port = 0
  #closing: Promise<void> | undefined

  constructor (options: FlowTagGrpcServerOptions = {}) {
    const parsed = grpcServerOptionsSchema.safeParse(options)
    if (!parsed.success) {
      const bad = describeBadOption(PKG, parsed.error, { schema: grpcServerOptionsSchema })
      throw new GrpcError(errorCodes.BAD_OPTION, bad.message, bad)
    }
    const o = parsed.data
    if ((o.nacos === undefined) !== (o.registration === undefined)) {
      const bad = badOption(PKG, o.nacos === undefined ? 'nacos' : 'registration', 'nacos and registration go together')
      throw new GrpcError(errorCodes.BAD_OPTION, bad.message, bad)
    }
    try {
      this.#tagger = new FlowTagger({ ...o.flow, mode: 'service' })
    } catch (err) {
      throw new GrpcError(errorCodes.BAD_OPTION, `${PKG}: invalid option "flow": ${(err as Error).message}`, { cause: err })
    }
    if (o.nacos !== undefined && o.registration !== undefined) {
      const reg = o.registration
      this.#registration = new NacosRegistration(o.nacos, { ...reg, metadata: { ...reg.metadata, protocol: 'grpc' } })
    }
    this.#shutdownTimeoutMs = o.shutdownTimeoutMs
    this.#metrics = o.meter === false ? undefined : new ServerCallMetrics(o.registration?.version, o.meter)
    this.server = new Server(o.server)
    this.health = new HealthImplementation({ '': 'NOT_SERVING' })
    this.health.addToServer(this.server)
  }

  /** Add a service whose handlers run inside their call's flow (`currentFlow()`, outbound calls carry it on). */
  addService (definition: ServiceDefinition, implementation: UntypedServiceImplementation): void {
    const wrapped: UntypedServiceImplementation = {}
    for (const [name, handler] of Object.entries(implementation)) {
      const method = definition[name] as { path?: string, responseStream?: boolean } | undefined
      wrapped[name] = this.#inFlow(handler as (...args: unknown[]) => unknown, method?.path ?? `/${name}`, method?.responseStream === true) as never
    }
    this.server.addService(definition, wrapped)
    const first = Object.values(definition)[0]
    const service = first?.path.split('/')[1]
    if (service !== undefined) {
      this.#services.push(service)
      this.health.setStatus(service, 'NOT_SERVING')
    }
  }

  #inFlow (handler: (...args: unknown[]) => unknown, path: string, streams: boolean): (...args: unknown[]) => unknown {
    const tagger = this.#tagger
    const metrics = this.#metrics
    return function handleInFlow (...args: unknown[]) {
      const call = args[0] as { metadata: Metadata; getPeer(): string }
      const flow = tagger.decide(new CallFacts(call) as never)
      if (metrics !== undefined) recordCall(metrics, path, flow.tag, streams, args)
      return tagger.run(flow, tagger.otelContext(flow), () => handler(...args))
    }
  }

  /**
   * Bind, then register in Nacos (in the background, with retries) and report SERVING.
   * @returns the bound port.
   * @throws {GrpcError} `FLOWTAG_GRPC_BIND_FAILED`
   */
  async listen (address = '0.0.0.0:0', credentials: ServerCredentials = ServerCredentials.createInsecure()): Promise<number> {
    try {
      this.#port = await new Promise<number>((resolve, reject) => this.server.bindAsync(address, credentials, (err, port) => (err === null ? resolve(port) : reject(err))))
    } catch (err) {
      throw new GrpcError(errorCodes.BIND_FAILED, `${PKG}: could not bind ${address}: ${(err as Error).message}`, { cause: err })
    }
    const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '')
    await this.#registration?.start({ address: host, port: this.#port })
    this.health.setStatus('', 'SERVING')
    for (const s of this.#services) this.health.setStatus(s, 'SERVING')
    return this.#port
  }

  get port (): number {
    return this.#port
  }

  /** Registered (when registering) and not draining. */
  get ready (): boolean {
    return this.#closing === undefined && (this.#registration?.ready ?? this.#port !== 0)
  }

  /**
   * Deregister, report NOT_SERVING, wait the registration's drainMs while still serving, let
   * in-flight calls finish (up to shutdownTimeoutMs, then cancel them), shut down. Idempotent.
   */
  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    this.health.setStatus('', 'NOT_SERVING')
    for (const s of this.#services) this.health.setStatus(s, 'NOT_SERVING')
    await this.#registration?.drain()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown()
        resolve()
      }, this.#shutdownTimeoutMs)
      this.server.tryShutdown(() => {
        clearTimeout(timer)
        resolve()
      })
    })
    await this.#registration?.close()
  }
}

/**
 * Records the call when it ends: a unary or client-streaming call when its callback answers
 * (the error's `code`, else OK); a server-streaming or bidi call when it finishes (OK), fails
 * (the error's `code`) or is cancelled (CANCELLED).
 */
function recordCall (metrics: ServerCallMetrics, path: string, lane: string | undefined, streams: boolean, args: unknown[]): void {
  const start = performance.now()
  let done = false
  const end = (code: number): void => {
    if (done) return
    done = true
    metrics.record(path, lane, code, (performance.now() - start) / 1000)
  }
  const codeOf = (err: unknown): number => {
    const code = (err as { code?: unknown } | null)?.code
    return typeof code === 'number' ? code : 2 // UNKNOWN, as grpc-js sends an error without a code
  }
  if (!streams && typeof args[1] === 'function') {
    const callback = args[1] as (err: unknown, ...rest: unknown[]) => void
    args[1] = (err: unknown, ...rest: unknown[]) => {
      end(err === null || err === undefined ? 0 : codeOf(err))
      callback(err, ...rest)
    }
    return
  }
  const call = args[0] as { once?: (event: string, listener: (...a: unknown[]) => void) => void }
  call.once?.('finish', () => end(0))
  call.once?.('error', (err) => end(codeOf(err)))
  call.once?.('cancelled', () => end(1))
}

function headersOf (md: Metadata): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {}
  for (const [k, v] of Object.entries(md.getMap())) if (typeof v === 'string') out[k] = v
  return out
}

/** `ipv4:1.2.3.4:5`, `1.2.3.4:5`, `[::1]:5` or `ipv6:[::1]:5` to the address alone. */
function peerIp (peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '')
  if (p.startsWith('[')) return p.slice(1, p.indexOf(']'))
  const colon = p.lastIndexOf(':')
  return colon === -1 ? p : p.slice(0, colon)
}

/**
 * A call's facts, the peer's address read only if a rule asks. A class, not an object literal
 * with a getter: such a literal costs a closure and an accessor pair on every call.
 */
class CallFacts {
  readonly headers: Record<string, string | string[] | undefined>
  readonly #call: { getPeer(): string }
  constructor (call: { metadata: Metadata; getPeer(): string }) {
    this.headers = headersOf(call.metadata)
    this.#call = call
  }

  get ip (): string | undefined { return peerIp(this.#call.getPeer()) }
}
