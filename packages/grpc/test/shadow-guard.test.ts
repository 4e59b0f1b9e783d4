// The pieces of the shadow guard alone: which calls a shadow may make, and the call that is never
// sent (what grpc-js's channel sees in place of a real call).
import t from 'tap'
import { Metadata, status, type StatusObject } from '@grpc/grpc-js'
import { RefusedCall, shadowCallCounts, shadowRefusal, SHADOW_WRITE_REFUSED } from '../src/shadow-guard.ts'

const safe = new Set(['/echo.Echo/Echo'])

t.test('shadowRefusal: only a shadow flow calling a method outside safeMethods is refused, and counted', async (t) => {
  const before = shadowCallCounts.refused
  t.equal(shadowRefusal(undefined, '/echo.Echo/Write', safe), undefined, 'outside a flow')
  t.equal(shadowRefusal({ tag: 'v2', baggage: {} }, '/echo.Echo/Write', safe), undefined, 'not a shadow')
  t.equal(shadowRefusal({ tag: 'v2', shadow: true, baggage: {} }, '/echo.Echo/Echo', safe), undefined, 'a safe method')
  const refused = shadowRefusal({ tag: 'v2', shadow: true, baggage: {} }, '/echo.Echo/Write', safe)
  t.equal(refused?.code, status.FAILED_PRECONDITION)
  t.match(refused?.details, /FLOWTAG_SHADOW_WRITE_REFUSED: a shadow flow may not call \/echo\.Echo\/Write/)
  t.same(refused?.metadata.get('x-flowtag-error'), [SHADOW_WRITE_REFUSED])
  t.equal(shadowCallCounts.refused, before + 1)
})

t.test('RefusedCall: ends once with the refusal, after start; sends nothing', async (t) => {
  const refusal: StatusObject = { code: status.FAILED_PRECONDITION, details: 'no', metadata: new Metadata() }
  const call = new RefusedCall(refusal)
  const statuses: StatusObject[] = []
  let sent = 0
  call.sendMessageWithContext({ callback: () => { sent++ } }, Buffer.from('x'))
  t.equal(sent, 1, 'the message callback is called (grpc-js waits for it), nothing goes out')
  call.start(new Metadata(), { onReceiveMetadata () {}, onReceiveMessage () {}, onReceiveStatus: (s: StatusObject) => { statuses.push(s) } } as never)
  t.same(statuses, [], 'not synchronously: grpc-js expects the status later')
  call.startRead()
  call.halfClose()
  call.cancelWithStatus(status.CANCELLED, 'cancelled')
  call.setCredentials({} as never)
  await new Promise((resolve) => process.nextTick(resolve))
  t.equal(statuses.length, 1)
  t.equal(statuses[0], refusal, 'the refusal, once')
  t.equal(call.getPeer(), '')
  t.equal(call.getCallNumber(), -1)
  t.equal(call.getAuthContext(), null)
})
