import { createSocket } from 'node:dgram'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { waitFor } from '@flowtag/test-kit'
import { parsePushPacket, PushReceiver } from '../src/push-receiver.ts'
import { memoryLogger } from './fixtures/target.ts'

const big = '18446744073709551615' // > 2^53: must survive as text

t.test('parsePushPacket keeps lastRefTime digits exactly, plain and gzipped', async (t) => {
  const text = `{"type":"dom","data":"{\\"name\\":\\"G@@s\\",\\"lastRefTime\\":1700000000000,\\"hosts\\":[]}","lastRefTime":${big}}`
  for (const buf of [Buffer.from(text), gzipSync(Buffer.from(text))]) {
    const p = parsePushPacket(buf)
    t.equal(p.type, 'dom')
    t.equal(p.lastRefTime, big)
    t.equal(JSON.parse(p.data).name, 'G@@s')
  }
  t.equal(parsePushPacket(Buffer.from('{"type":"dom","data":"{}","lastRefTime":"42"}')).lastRefTime, '42')
  t.throws(() => parsePushPacket(Buffer.from('not json')))
})

t.test('the receiver acks every packet to its sender, echoing lastRefTime as a string', async (t) => {
  const got: string[] = []
  const logger = memoryLogger()
  const rx = new PushReceiver('127.0.0.1', logger, (d) => got.push(d), () => '{"dumped":true}')
  t.teardown(() => rx.close())
  const port = await rx.port()
  const server = createSocket('udp4')
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()))
  const acks: Array<Record<string, unknown>> = []
  const rawAcks: string[] = []
  server.on('message', (m) => {
    rawAcks.push(m.toString())
    acks.push(JSON.parse(m.toString()))
  })
  const send = (obj: string) => server.send(obj, port, '127.0.0.1')
  send(`{"type":"dom","data":"{\\"name\\":\\"G@@s\\"}","lastRefTime":${big}}`)
  send('{"type":"dump","data":"","lastRefTime":7}')
  send('{"type":"weird","data":"","lastRefTime":8}')
  send('garbage')
  await waitFor('three acks', () => acks.length >= 3, 5000)
  t.same(
    acks.map((a) => [a.type, a.lastRefTime]),
    [
      ['push-ack', big],
      ['dump-ack', '7'],
      ['unknown-ack', '8']
    ]
  )
  t.match(rawAcks[0], `"lastRefTime":"${big}"`)
  t.equal(acks[1]?.data, '{"dumped":true}')
  t.same(got, ['{"name":"G@@s"}'])
  t.ok(logger.lines.some((l) => l.msg === 'nacos push packet unreadable'))
})
