// The inventory service's gRPC contract, shared by its server and order-service's client.
// A JSON codec keeps the demo free of generated code; a real service would load a .proto
// (@grpc/proto-loader) the same way: only the definition object changes.
import { makeGenericClientConstructor, type ServiceDefinition } from '@grpc/grpc-js'

export interface Hop {
  service: string
  version: string
  lane: string | null
}

export interface ReserveRequest {
  sku: string
}

export interface ReserveReply {
  sku: string
  reserved: boolean
  hops: Hop[]
}

const serialize = (v: unknown) => Buffer.from(JSON.stringify(v))
const deserialize = (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown

export const InventoryService: ServiceDefinition = {
  reserve: {
    path: '/flowtag.demo.Inventory/Reserve',
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize
  }
}

export const InventoryClient = makeGenericClientConstructor(InventoryService, 'Inventory')
export type InventoryClient = InstanceType<typeof InventoryClient>

/** One Reserve call as a promise. */
export function reserve (client: InventoryClient, request: ReserveRequest, deadlineMs = 5000): Promise<ReserveReply> {
  return new Promise((resolve, reject) => {
    const c = client as unknown as { reserve(req: ReserveRequest, opts: { deadline: number }, cb: (err: Error | null, reply: ReserveReply) => void): void }
    c.reserve(request, { deadline: Date.now() + deadlineMs }, (err, reply) => (err === null ? resolve(reply) : reject(err)))
  })
}
