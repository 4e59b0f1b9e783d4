// The inventory service's gRPC contract, shared by its server and order-service's client.
// A JSON codec keeps the demo free of generated code; a real service would load a .proto
// (@grpc/proto-loader) the same way: only the definition object changes.
import { makeGenericClientConstructor, type ServiceDefinition } from '@grpc/grpc-js'

export interface Hop {
  service: string
  version: string
  lane: string | null
}

export interface StockRequest {
  sku: string
}

export interface StockReply {
  sku: string
  inStock: boolean
  hops: Hop[]
}

const serialize = (v: unknown) => Buffer.from(JSON.stringify(v))
const deserialize = (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown

export const InventoryService = {
  // A read: safe to run twice, so order-service lists it in `idempotentMethods`.
  check: {
    path: '/flowtag.demo.Inventory/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize
  }
} satisfies ServiceDefinition

export const InventoryClient = makeGenericClientConstructor(InventoryService, 'Inventory')
export type InventoryClient = InstanceType<typeof InventoryClient>

/** One Check call as a promise. */
export function checkStock (client: InventoryClient, request: StockRequest, deadlineMs = 5000): Promise<StockReply> {
  return new Promise((resolve, reject) => {
    const c = client as unknown as { check(req: StockRequest, opts: { deadline: number }, cb: (err: Error | null, reply: StockReply) => void): void }
    c.check(request, { deadline: Date.now() + deadlineMs }, (err, reply) => (err === null ? resolve(reply) : reject(err)))
  })
}
