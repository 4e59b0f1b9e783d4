// Config over gRPC: reads, publishes and removals, and the listen whose changes the server pushes
// (ConfigChangeNotifyRequest), on the config connection, as the Java SDK's ClientWorker does.
// Nothing is replayed after a reconnect: the listen loop sends its batch listen again.
import { call, tenant, nsName } from './grpc-call.ts'
import { GrpcAnswerError, MessageTooLargeError } from './grpc-connection.ts'
import { GrpcSession, type SessionBase } from './grpc-session.ts'
import type { ServerRequester } from './http.ts'
import { md5, type ConfigKey, type Transport } from './transport.ts'

/** The session's settings (see `connectionLabels` for the labels). */
export type GrpcConfigOptions = SessionBase

/** The config half of the gRPC transport. */
export interface GrpcConfig extends Pick<Transport, 'getConfig' | 'publishConfig' | 'removeConfig'>, Required<Pick<Transport, 'listenConfigs'>> {
  readonly session: GrpcSession
  /** Note a server's generation: a listen to a 3.x server names the default namespace `public`. */
  setGeneration(server: string, generation: 2 | 3): void
  /** Closes the session and ends the listens waiting. */
  close(): void
}

/** The answer's errorCode when the config does not exist. */
const CONFIG_NOT_FOUND = 300

const ckey = (dataId: string, group: string): string => `${group}\u0002${dataId}`

/** A config too large for a gRPC message, said with its name and size (the request's error, not the server's). */
function configTooLarge (err: unknown, what: string, key: ConfigKey, ns: string, contentBytes?: number): unknown {
  if (!(err instanceof MessageTooLargeError)) return err
  const bytes = err.bytes ?? contentBytes
  const size = err.bytes !== undefined ? `a message of ${err.bytes} bytes` : contentBytes !== undefined ? `content of ${contentBytes} bytes` : 'a message'
  const limit = err.limitBytes === undefined ? '' : ` of ${err.limitBytes} bytes`
  return new MessageTooLargeError(
    `${what} config "${key.dataId}" (group ${key.group}${ns === '' ? '' : `, namespace ${ns}`}) over gRPC: ${size}, over the message size limit${limit}; ` +
      'raise grpcMaxMessageBytes (and the server\'s nacos.remote.server.grpc.sdk.max-inbound-message-size) or make the config smaller',
    err,
    { bytes, limitBytes: err.limitBytes }
  )
}

export function createGrpcConfig (opts: GrpcConfigOptions): GrpcConfig {
  const waiters = new Set<(key: ConfigKey | undefined) => void>()
  /** Servers (`host:port`) known to be Nacos 3.x. */
  const third = new Set<string>()
  /**
   * The tenant of a config listen: on 3.x the default namespace is named `public`, as the 3.x
   * clients name it (a 3.1.0 server can push \`tenant=null\` to listeners walked after a blank-tenant
   * listener of the same key, so a blank one would break other clients there); '' on 2.x, where
   * `public` would be another namespace.
   */
  const listenTenant = (r: ServerRequester, ns: string): string => (third.has(`${r.server.host}:${r.server.port}`) ? nsName(ns) : tenant(ns))

  const wake = (key: ConfigKey | undefined): void => {
    for (const w of [...waiters]) w(key)
  }

  const session = new GrpcSession({
    ...opts,
    module: 'config',
    handlers: {
      ConfigChangeNotifyRequest: (body) => {
        wake({ dataId: String(body.dataId ?? ''), group: String(body.group ?? '') })
        return {}
      }
    },
    // Config listeners are redone by the listen loop: it sends its batch listen again.
    redo: async () => {},
    holdsState: () => false,
    onLost: () => wake(undefined)
  })

  return {
    session,

    setGeneration (server, generation) {
      if (generation === 3) third.add(server)
      else third.delete(server)
    },

    close () {
      session.close()
      wake(undefined)
    },

    async getConfig (r, ns, key) {
      const conn = await session.connection(r)
      try {
        const res = await call(conn, r, 'ConfigQueryRequest', { dataId: key.dataId, group: key.group, tenant: tenant(ns), tag: '' })
        const content = String(res.body.content ?? '')
        const type = res.body.contentType
        return { content, md5: typeof res.body.md5 === 'string' && res.body.md5 !== '' ? res.body.md5 : md5(content), type: typeof type === 'string' && type !== '' ? type : undefined }
      } catch (err) {
        if (err instanceof GrpcAnswerError && err.errorCode === CONFIG_NOT_FOUND) return undefined
        throw configTooLarge(err, 'reading', key, ns)
      }
    },

    async publishConfig (r, ns, key, content, type) {
      const conn = await session.connection(r)
      await call(conn, r, 'ConfigPublishRequest', {
        dataId: key.dataId,
        group: key.group,
        tenant: tenant(ns),
        content,
        casMd5: '',
        additionMap: type === undefined ? {} : { type }
      }).catch((err: unknown) => {
        throw configTooLarge(err, 'publishing', key, ns, Buffer.byteLength(content))
      })
    },

    async removeConfig (r, ns, key) {
      const conn = await session.connection(r)
      await call(conn, r, 'ConfigRemoveRequest', { dataId: key.dataId, group: key.group, tenant: tenant(ns), tag: '' })
    },

    async listenConfigs (r, ns, keys, timeoutMs, signal) {
      const conn = await session.connection(r)
      const wanted = new Set(keys.map((k) => ckey(k.dataId, k.group)))
      // Wait for a push from the moment the listen is sent, so none falls between the two.
      let resolveWait: (keys: ConfigKey[]) => void = () => {}
      const pushed = new Promise<ConfigKey[]>((resolve) => {
        resolveWait = resolve
      })
      const waiter = (key: ConfigKey | undefined): void => {
        if (key === undefined) resolveWait([])
        else if (wanted.has(ckey(key.dataId, key.group))) resolveWait([key])
      }
      waiters.add(waiter)
      const timer = setTimeout(() => resolveWait([]), timeoutMs)
      const onAbort = (): void => resolveWait([])
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        const res = await call(conn, r, 'ConfigBatchListenRequest', {
          listen: true,
          configListenContexts: keys.map((k) => ({ dataId: k.dataId, group: k.group, md5: k.md5, tenant: listenTenant(r, ns) }))
        })
        const changed = Array.isArray(res.body.changedConfigs) ? (res.body.changedConfigs as Array<Record<string, unknown>>) : []
        if (changed.length > 0) return changed.map((c) => ({ dataId: String(c.dataId), group: String(c.group) }))
        return await pushed
      } finally {
        waiters.delete(waiter)
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      }
    }
  }
}
