// Fallback receipts in the flow's baggage: format, one entry per service, bounds, merging, span event.
import t from 'tap'
import { context, trace, type Span } from '@opentelemetry/api'
import { FALLBACK_BAGGAGE_KEY, FALLBACK_HEADER, type FlowContext } from '../src/index.ts'
import { fallbackOf, MAX_FALLBACK_ENTRIES, MAX_FALLBACK_LENGTH, mergeFallback, recordFallback } from '../src/internals.ts'
import { TestContextManager } from './fixtures/otel.ts'

context.setGlobalContextManager(new TestContextManager())
t.teardown(() => context.disable())

const flow = (baggage: Record<string, string> = {}): FlowContext => ({ tag: 'v2', baggage })

t.test('recordFallback writes service:from>to(reason), once per service', async (t) => {
  const f = flow()
  t.equal(fallbackOf(f), undefined, 'no receipt while in lane')
  t.equal(fallbackOf(undefined), undefined)
  recordFallback(f, 'orders', 'v2', 'stable', 'no-instance')
  t.equal(f.baggage[FALLBACK_BAGGAGE_KEY], 'orders:v2>stable(no-instance)')
  recordFallback(f, 'orders', 'v2', 'stable', 'ejected')
  t.equal(fallbackOf(f), 'orders:v2>stable(no-instance)', 'a second entry for the same service is ignored')
  recordFallback(f, 'inventory', 'v2', 'stable', 'lease-expired')
  t.equal(fallbackOf(f), 'orders:v2>stable(no-instance)|inventory:v2>stable(lease-expired)')
  t.equal(FALLBACK_HEADER, 'x-flowtag-fallback')
})

t.test('entries that do not fit the format are not written', async (t) => {
  const f = flow()
  recordFallback(f, 'bad service', 'v2', 'stable', 'no-instance')
  recordFallback(f, 'orders', 'v2|x', 'stable', 'no-instance')
  recordFallback(f, 'orders', 'v2', 'stable', 'whatever' as 'ejected')
  recordFallback(f, 'a:b', 'v2', 'stable', 'ejected')
  t.same(f.baggage, {})
  t.equal(fallbackOf(flow({ [FALLBACK_BAGGAGE_KEY]: '' })), undefined, 'an empty receipt is none')
})

t.test('bounded: at most MAX_FALLBACK_ENTRIES entries and MAX_FALLBACK_LENGTH characters', async (t) => {
  const f = flow()
  for (let i = 0; i < MAX_FALLBACK_ENTRIES + 3; i++) recordFallback(f, `svc${i}`, 'v2', 'stable', 'no-instance')
  t.equal(fallbackOf(f)?.split('|').length, MAX_FALLBACK_ENTRIES)
  t.notOk(fallbackOf(f)?.includes(`svc${MAX_FALLBACK_ENTRIES}:`))

  const g = flow()
  const long = (i: number) => `${String(i).padStart(2, '0')}${'s'.repeat(110)}`
  for (let i = 0; i < 6; i++) recordFallback(g, long(i), 'v2', 'stable', 'ejected')
  const value = fallbackOf(g)!
  t.ok(value.length <= MAX_FALLBACK_LENGTH, `${value.length} characters`)
  t.equal(value.split('|').length, 3, 'the entry that would pass the length is dropped')
})

t.test('mergeFallback takes the valid entries of an upstream header, skipping duplicates', async (t) => {
  const f = flow({ [FALLBACK_BAGGAGE_KEY]: 'orders:v2>stable(no-instance)|garbage' })
  mergeFallback(f, 'inventory:v2>stable(ejected)|orders:v3>stable(ejected)|not an entry')
  t.equal(fallbackOf(f), 'orders:v2>stable(no-instance)|inventory:v2>stable(ejected)', 'garbage already in the baggage is dropped on write')
  mergeFallback(f, ['pricing:v2>stable(lease-expired)', 'tax:v2>stable(no-instance)'])
  t.equal(fallbackOf(f), 'orders:v2>stable(no-instance)|inventory:v2>stable(ejected)|pricing:v2>stable(lease-expired)|tax:v2>stable(no-instance)')

  const g = flow()
  mergeFallback(g, undefined)
  mergeFallback(g, `a:v2>stable(ejected)|${'x'.repeat(MAX_FALLBACK_LENGTH * 2)}`)
  t.same(g.baggage, {}, 'missing and oversized headers are ignored')
  mergeFallback(g, '')
  t.same(g.baggage, {})
})

t.test('a written entry is an event on the active span', async (t) => {
  const events: Array<{ name: string; attributes: unknown }> = []
  const span = {
    addEvent (name: string, attributes: unknown) { events.push({ name, attributes }); return span },
    isRecording: () => true,
    spanContext: () => ({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 })
  } as unknown as Span
  const f = flow()
  context.with(trace.setSpan(context.active(), span), () => {
    recordFallback(f, 'orders', 'v2', 'stable', 'ejected')
    recordFallback(f, 'orders', 'v2', 'stable', 'ejected')
  })
  t.same(events, [{
    name: 'flowtag.fallback',
    attributes: { 'flowtag.service': 'orders', 'flowtag.lane.requested': 'v2', 'flowtag.lane.served': 'stable', 'flowtag.fallback.reason': 'ejected' }
  }], 'one event: the duplicate is not recorded')
  // no active span: still written
  const g = flow()
  recordFallback(g, 'orders', 'v2', 'stable', 'ejected')
  t.equal(fallbackOf(g), 'orders:v2>stable(ejected)')
})
