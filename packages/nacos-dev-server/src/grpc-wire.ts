// Nacos's gRPC wire format: every call carries a `Payload` whose `Metadata.type` names the
// request/response class and whose `Any.value` holds that object's JSON. The proto has no
// package, so the method paths are `/Request/request` and `/BiRequestStream/requestBiStream`.
// Field numbers are Nacos's (nacos_grpc_service.proto); they must not change.
import protobuf from 'protobufjs'

// Map fields are spelled with keyType, which the INamespace typing does not list.
const root = protobuf.Root.fromJSON({
  nested: {
    Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
    Metadata: {
      fields: {
        type: { type: 'string', id: 3 },
        headers: { keyType: 'string', type: 'string', id: 7 },
        clientIp: { type: 'string', id: 8 }
      }
    },
    Payload: { fields: { metadata: { type: 'Metadata', id: 2 }, body: { type: 'Any', id: 3 } } }
  }
} as unknown as protobuf.INamespace)
const PayloadType = root.lookupType('Payload')

/** A decoded payload: the class name, its headers and the parsed JSON body. */
export interface WireMessage {
  type: string
  headers: Record<string, string>
  clientIp?: string
  body: Record<string, unknown>
}

export const requestPath = '/Request/request'
export const biStreamPath = '/BiRequestStream/requestBiStream'

/** Encodes a message as a Nacos `Payload`. */
export function encodePayload (message: WireMessage): Buffer {
  const payload = PayloadType.create({
    metadata: { type: message.type, headers: message.headers, clientIp: message.clientIp ?? '' },
    body: { type_url: '', value: Buffer.from(JSON.stringify(message.body)) }
  })
  return Buffer.from(PayloadType.encode(payload).finish())
}

/** Decodes a Nacos `Payload`; a body that is not JSON decodes as `{}`. */
export function decodePayload (bytes: Buffer): WireMessage {
  const raw = PayloadType.toObject(PayloadType.decode(bytes), { defaults: true }) as {
    metadata?: { type?: string; headers?: Record<string, string>; clientIp?: string }
    body?: { value?: Uint8Array }
  }
  let body: Record<string, unknown> = {}
  const value = raw.body?.value
  if (value !== undefined && value.length > 0) {
    try {
      const parsed: unknown = JSON.parse(Buffer.from(value).toString('utf8'))
      if (parsed !== null && typeof parsed === 'object') body = parsed as Record<string, unknown>
    } catch {
      // A body that is not JSON carries nothing we read.
    }
  }
  return {
    type: raw.metadata?.type ?? '',
    headers: raw.metadata?.headers ?? {},
    clientIp: raw.metadata?.clientIp ?? '',
    body
  }
}
