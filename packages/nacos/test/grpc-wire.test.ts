// The Payload codec: what arrives from a server is decoded defensively.
import t from 'tap'
import * as devServerWire from '@flowtag/nacos-dev-server/wire'
import * as clientWire from '../src/grpc-wire.ts'
import { decodePayload, encodePayload } from '../src/grpc-wire.ts'

t.test('the client and the dev server speak through one codec, not two copies', async (t) => {
  // a wrong field number in a copy would be wrong in both and tested by neither
  for (const name of ['encodePayload', 'decodePayload', 'requestPath', 'biStreamPath'] as const) {
    t.equal(clientWire[name], devServerWire[name], name)
  }
})

t.test('a payload round-trips type, headers, clientIp and body', async (t) => {
  const msg = { type: 'InstanceRequest', headers: { accessToken: 'x' }, clientIp: '10.0.0.1', body: { serviceName: 'orders', n: 1 } }
  t.same(decodePayload(encodePayload(msg)), msg)
  t.same(decodePayload(encodePayload({ type: 'T', headers: {}, body: {} })), { type: 'T', headers: {}, clientIp: '', body: {} })
})

t.test('a body that is not a JSON object decodes as {}', async (t) => {
  const withBody = (json: string) => {
    const bytes = encodePayload({ type: 'T', headers: {}, body: { marker: 'MARK' } })
    // swap the JSON text in place: same length keeps the protobuf framing valid
    const at = bytes.indexOf('{"marker":"MARK"}')
    t.ok(at >= 0)
    return Buffer.concat([bytes.subarray(0, at), Buffer.from(json.padEnd(17, ' ')), bytes.subarray(at + 17)])
  }
  t.same(decodePayload(withBody('not json at all')).body, {})
  t.same(decodePayload(withBody('null')).body, {})
  t.same(decodePayload(withBody('42')).body, {})
  t.same(decodePayload(withBody('{"a":1}')).body, { a: 1 })
  t.same(decodePayload(Buffer.alloc(0)), { type: '', headers: {}, clientIp: '', body: {} })
})
