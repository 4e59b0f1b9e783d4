// Nacos's gRPC wire format (Payload, Metadata, Any; the method paths). One copy, in the dev server,
// which sits below this client and must not import it; the client's modules import it from here.
export { biStreamPath, decodePayload, encodePayload, requestPath, type WireMessage } from '@flowtag/nacos-dev-server/wire'
