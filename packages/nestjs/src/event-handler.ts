// An event handled to its end: the handler awaited, and the stream it returns, so a handler that
// fails fails its message (the lane consumer retries it) instead of being logged and lost. Nest's
// ServerKafka does this itself; its ServerRMQ connects the stream and returns.
import type { MessageHandler } from '@nestjs/microservices'
import { isObservable, lastValueFrom } from 'rxjs'

export interface EventServer {
  getHandlerByPattern(pattern: string): MessageHandler | null
}

/** Run `pattern`'s handler on `packet`; resolves when it and its stream are done, rejects when either fails. */
export async function handleEventToEnd (server: EventServer, pattern: string, packet: { data: unknown }, context: unknown, log: (message: string) => void): Promise<void> {
  const handler = server.getHandlerByPattern(pattern)
  if (handler === null || handler === undefined) {
    log(`There is no matching event handler defined in the remote service. Event pattern: ${pattern}`)
    return
  }
  const result: unknown = await handler(packet.data, context as never)
  if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined })
}
