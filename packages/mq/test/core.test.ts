// The broker-neutral core: lane headers, the trust policy on message headers, the live lanes
// from the registry's push, the lane policy, and option errors.
import t from 'tap'
import type { Producer as PlatformaticProducer } from '@platformatic/kafka'
import { currentTag, runWithFlow, signTag } from '@flowtag/context'
import { StaticDiscovery } from '@flowtag/nacos'
import { carrierOf, ConsumerMetrics, CONSUMER_METADATA, errorCodes, FlowReader, handles, laneHeaders, LaneWatch, MqError, ownerOf, PolicySource, withLaneHeaders } from '../src/index.ts'
import { ConsumerCore } from '../src/consumer-core.ts'
import { consumerOptionsSchema } from '../src/options.ts'
import { laneProducer } from '../src/kafkajs.ts'
import { laneProducer as platformaticLaneProducer } from '../src/platformatic-kafka.ts'
import { amqpConsumerOptionsSchema, laneChannel } from '../src/amqplib.ts'

const KEY = { id: 'k1', secret: 'a-secret-of-16-chars' }

t.test('lane headers: inside a flow only, merged into existing baggage, signed when asked', async (t) => {
  t.same(laneHeaders({}, undefined), {}, 'outside a flow: nothing')
  t.same(withLaneHeaders({ a: 'b' }, undefined), { a: 'b' }, 'outside a flow the headers are unchanged')
  t.equal(withLaneHeaders(undefined, undefined), undefined)
  const flow = { tag: 'v2', baggage: { tenant: 'acme' } }
  t.same(laneHeaders({ baggage: 'other=1' }, flow), { 'x-flow-tag': 'v2', baggage: 'other=1,flowtag.lane=v2,tenant=acme' })
  t.same(withLaneHeaders({ 'X-Flow-Tag': 'old', keep: Buffer.from('x') }, flow), { keep: Buffer.from('x'), 'x-flow-tag': 'v2', baggage: 'flowtag.lane=v2,tenant=acme' }, 'the old lane headers are replaced, others kept')
  const signed = laneHeaders({}, flow, (lane) => signTag(lane, 60, KEY))
  t.match(signed['x-flow-tag'], /^v2~\d+~k1~/, 'x-flow-tag signed')
  t.match(signed.baggage, /flowtag\.lane=v2/, 'the baggage member stays plain')
  t.same(laneHeaders({}, flow, () => { throw new Error('no key') })['x-flow-tag'], 'v2', 'a signer that throws leaves the plain lane')
  t.same(laneHeaders({}, { baggage: {} }), {}, 'a flow without a lane or baggage adds nothing')
  runWithFlow(flow, () => t.same(laneHeaders(undefined)['x-flow-tag'], 'v2', 'the current flow by default'))
})

t.test('carrierOf: strings and Buffers, repeated headers kept as arrays, other values left out', async (t) => {
  t.same(carrierOf(undefined), {})
  t.same(carrierOf({ 'X-Flow-Tag': Buffer.from('v2'), n: 3, rep: ['a', Buffer.from('b')], one: [Buffer.from('c')], none: [1] }), { 'x-flow-tag': 'v2', rep: ['a', 'b'], one: 'c' })
})

t.test('FlowReader: the trust policies of HTTP applied to messages', async (t) => {
  const always = new FlowReader('always', false)
  t.same(always.read({ 'x-flow-tag': 'v2' }).flow.tag, 'v2')
  t.same(always.read({ baggage: 'flowtag.lane=v3' }).flow.tag, 'v3', 'the baggage lane when there is no x-flow-tag')
  t.same(always.read({ 'x-flow-tag': 'bad tag!' }), { flow: { baggage: {} }, refused: true }, 'malformed: untagged, refused')
  t.same(always.read({ 'x-flow-tag': ['v2', 'v3'] }).refused, true, 'repeated: refused')
  t.same(always.read({}), { flow: { baggage: {} }, refused: false }, 'no lane: untagged, not refused')
  const never = new FlowReader('never', false)
  t.same(never.read({ 'x-flow-tag': 'v2' }), { flow: { baggage: {} }, refused: true }, 'never: every lane refused')
  const signed = new FlowReader({ signed: { keys: [KEY] } }, false)
  t.equal(signed.read({ 'x-flow-tag': signTag('v2', 60, KEY) }).flow.tag, 'v2', 'a valid signed tag is honoured')
  const forged = signTag('v2', 60, { id: 'k1', secret: 'another-secret-16c' })
  t.same(signed.read({ 'x-flow-tag': forged, baggage: 'flowtag.lane=v2' }), { flow: { baggage: {} }, refused: true }, 'a forged signature: untagged, refused (the plain baggage lane is not trusted)')
  t.same(signed.read({ 'x-flow-tag': 'v2' }).refused, true, 'signed only: a plain lane is refused')
  t.equal(signed.run({ tag: 'v9', baggage: {} }, () => 42), 42)
})

t.test('ownership: permissive, strict and leases', async (t) => {
  const policy = { stable: 'v1', strict: false }
  const live = new Set(['v2'])
  const isLive = (l: string) => live.has(l)
  t.equal(ownerOf(undefined, policy, isLive), 'v1', 'untagged: stable')
  t.equal(ownerOf('v1', policy, isLive), 'v1')
  t.equal(ownerOf('v2', policy, isLive), 'v2', 'a live lane: its own')
  t.equal(ownerOf('v3', policy, isLive), 'v1', 'permissive: a lane with no live consumer is stable\'s')
  t.equal(ownerOf('v3', { ...policy, strict: true }, isLive), undefined, 'strict: it waits')
  t.ok(handles('v2', 'v2', policy, () => false), 'a lane consumer handles its lane whatever the registry says')
  t.notOk(handles('v2', undefined, policy, isLive), 'and never untagged messages')
  t.ok(handles('v1', 'v3', policy, isLive))
  t.notOk(handles('v1', 'v2', policy, isLive))
  const source = new PolicySource('svc', (s) => (s === 'svc' ? { stable: 'v2', strict: true, expired: ['v3'] } : undefined), 'v1', 'permissive')
  t.same(source.current(), { stable: 'v2', strict: true }, 'lanes() over the defaults')
  t.equal(handles('v3', 'v3', source.current(), () => true), true, 'a lane whose lease ran out keeps its messages while its consumers are live')
  t.same(new PolicySource('svc', () => { throw new Error('boom') }, 'v1', 'strict').current(), { stable: 'v1', strict: true }, 'a resolver that throws: the defaults')
})

t.test('LaneWatch: live lanes of a consumer key, pushed', async (t) => {
  const discovery = new StaticDiscovery({})
  const watch = new LaneWatch(discovery, 'worker', 'orders', 'version', () => 'v1')
  const seen: Array<{ came: readonly string[], gone: readonly string[] }> = []
  watch.onChange(({ came, gone }) => seen.push({ came, gone }))
  watch.onChange(() => { throw new Error('a bad listener') })
  await watch.start()
  await watch.start()
  t.same([...watch.live], [])
  const inst = (port: number, version: string | undefined, keys: string | undefined, extra: object = {}) =>
    ({ ip: '127.0.0.1', port, metadata: { ...(version === undefined ? {} : { version }), ...(keys === undefined ? {} : { [CONSUMER_METADATA]: keys }) }, ...extra })
  discovery.set('worker', [inst(1, 'v2', 'orders'), inst(2, undefined, 'payments, orders'), inst(3, 'v3', 'payments'), inst(4, 'v4', undefined), inst(5, 'v5', 'orders', { healthy: false })])
  t.same([...watch.live].sort(), ['v1', 'v2'], 'eligible instances naming the key; unlabelled ones are stable\'s')
  t.ok(watch.isLive('v2'))
  t.ok(watch.changedAt > 0)
  discovery.set('worker', [inst(1, 'v2', 'orders')])
  t.same(seen, [{ came: ['v2', 'v1'], gone: [] }, { came: [], gone: ['v1'] }])
  discovery.set('worker', [inst(1, 'v2', 'orders'), inst(9, 'v4', 'other')])
  t.equal(seen.length, 2, 'no change of the live set: no event')
  watch.close()
})

t.test('metrics: counts per lane, fallback, refused, lag', async (t) => {
  const m = new ConsumerMetrics({ system: 'kafka', destination: 'orders', group: 'g', version: 'v1' })
  m.handled(undefined, 0.01, false)
  m.handled('v2', 0.01, true)
  m.failed('v2', 0.02, true, Object.assign(new Error('x'), { code: 'E_X' }))
  m.failed(undefined, 0.02, false, null)
  m.skipped('v3')
  m.refused()
  m.lag('orders/0', 5)
  t.same(m.stats, {
    lanes: { none: { handled: 1, failed: 1, skipped: 0, fallback: 0 }, v2: { handled: 1, failed: 1, skipped: 0, fallback: 1 }, v3: { handled: 0, failed: 0, skipped: 1, fallback: 0 } },
    refused: 1,
    lag: { 'orders/0': 5 }
  })
})

t.test('options: every bad field named', async (t) => {
  const discovery = new StaticDiscovery({})
  const base = { service: 'worker', discovery }
  const bad = (o: object, field: RegExp) => t.throws(() => new ConsumerCore(consumerOptionsSchema.parse(o), 'k', { system: 'kafka', destination: 'd', group: 'g' }), field)
  bad({ service: 'worker' }, /invalid option "discovery"/)
  bad({ ...base, nacos: { naming: {} } }, /invalid option "registration": nacos and registration go together/)
  const err = (() => { try { consumerOptionsSchema.parse({ ...base, lane: 'bad lane' }) } catch (e) { return e } })()
  t.ok(err !== undefined)
  const { parseWith } = await import('../src/options.ts')
  t.throws(() => parseWith(consumerOptionsSchema, { ...base, lane: 'bad lane' }), { code: errorCodes.BAD_OPTION, message: /invalid option "lane"/ })
  t.throws(() => parseWith(consumerOptionsSchema, { ...base, mode: 'loose' }), { code: errorCodes.BAD_OPTION, message: /invalid option "mode"/ })
  // the one key grammar of @flowtag/context, checked at the boundary with the exact field
  t.throws(() => parseWith(consumerOptionsSchema, { ...base, trust: { signed: { keys: [{ id: 'k', secret: 'short' }] } } }), { code: errorCodes.BAD_OPTION, message: /invalid option "trust.signed.keys.0.secret"/ })
  t.throws(() => parseWith(consumerOptionsSchema, { ...base, signing: { keys: [{ id: 'bad id!', secret: KEY.secret }] } }), { code: errorCodes.BAD_OPTION, message: /invalid option "signing.keys.0.id"/ })
  t.throws(() => laneProducer({} as never), { code: errorCodes.BAD_OPTION, message: /"producer"/ })
  t.throws(() => laneProducer({ send () {}, sendBatch () {} } as never, { signTag: 'x' as never }), /"signTag"/)
  t.throws(() => laneChannel({} as never), { code: errorCodes.BAD_OPTION, message: /"channel"/ })
  t.throws(() => laneChannel({ publish () {}, sendToQueue () {} } as never, { signTag: 1 as never }), /"signTag"/)
  // a misspelt signTag would send plain tags that a signed-only consumer refuses: named, not ignored
  t.throws(() => laneProducer({ send () {}, sendBatch () {} } as never, { sign: () => 'x' } as never), { code: errorCodes.BAD_OPTION, message: /"sign": unknown key/ })
  t.throws(() => laneChannel({ publish () {}, sendToQueue () {} } as never, { signtag: () => 'x' } as never), { code: errorCodes.BAD_OPTION, message: /"signtag"/ })
  t.throws(() => laneProducer({ send () {}, sendBatch () {} } as never, null as never), { code: errorCodes.BAD_OPTION, message: /"options"/ })
  t.throws(() => laneChannel({ publish () {}, sendToQueue () {} } as never, 'x' as never), { code: errorCodes.BAD_OPTION, message: /"options"/ })
  t.throws(() => parseWith(amqpConsumerOptionsSchema, { ...base, connection: { createChannel () {}, createConfirmChannel () {} }, exchange: 'e', queue: 'q', knownLanes: ['v2', 'not a lane'] }),
    { code: errorCodes.BAD_OPTION, message: /invalid option "knownLanes.1": must be 1-64 characters/ })
  t.ok(new MqError(errorCodes.BROKER, 'x') instanceof MqError)
  const core = new ConsumerCore(consumerOptionsSchema.parse({ ...base, lane: 'v2' }), 'k', { system: 'kafka', destination: 'd', group: 'g' })
  t.equal(core.ready, true, 'not registering: ready')
  t.equal(core.stable, false)
  await core.register()
  await core.deregister()
  core.close()
})

t.test('the shared lane routing: strict gives the mode, signing the trust, as the preset\'s routing hands them over', async (t) => {
  const discovery = new StaticDiscovery({})
  const id = { system: 'kafka', destination: 'd', group: 'g' } as const
  const core = (o: object) => new ConsumerCore(consumerOptionsSchema.parse({ service: 'w', discovery, lane: 'v1', ...o }), 'k', id)
  const strict = core({ strict: true })
  t.equal(strict.policy.strict, true, 'strict: true is mode strict')
  t.equal(core({ strict: true, mode: 'permissive' }).policy.strict, false, 'an explicit mode wins')
  t.equal(core({}).policy.strict, false, 'default: permissive, as before')

  const signed = core({ signing: { keys: [KEY], ttlSeconds: 60 } })
  t.equal(signed.verdict({ 'x-flow-tag': 'v2' }, undefined, false).lane, undefined, 'with signing, a plain lane is refused')
  t.equal(signed.verdict({ 'x-flow-tag': signTag('v2', 60, KEY) }, undefined, false).lane, 'v2', 'a tag signed with its keys is honoured')
  t.equal(core({ signing: { keys: [KEY] }, trust: 'always' }).verdict({ 'x-flow-tag': 'v2' }, undefined, false).lane, 'v2', 'an explicit trust wins')
  t.equal(core({}).verdict({ 'x-flow-tag': 'v2' }, undefined, false).lane, 'v2', 'default: always, as before')
  for (const c of [strict, signed]) c.close()
})

t.test('producers: signing signs the lane header; signTag is a deprecated alias; not both', async (t) => {
  const sent: Array<{ messages: Array<{ headers?: Record<string, string> }> }> = []
  const fake = { send: async (r: never) => { sent.push(r) }, sendBatch: async () => {} } as never
  const kafkajs = laneProducer(fake, { signing: { keys: [KEY], ttlSeconds: 60 } })
  await runWithFlow({ tag: 'v2', baggage: {} }, () => kafkajs.send({ topic: 't', messages: [{ value: 'a' }] }))
  const reader = new FlowReader({ signed: { keys: [KEY] } }, false)
  t.equal(reader.read(sent[0]?.messages[0]?.headers).flow.tag, 'v2', 'signed with signing.keys[0]: a signed-only reader honours it')
  const warnings: Error[] = []
  const onWarning = (w: Error) => { if ((w as { code?: string }).code === 'FLOWTAG_DEP_SIGNTAG') warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  laneChannel({ publish () {}, sendToQueue () {} } as never, { signTag: (l) => l })
  laneProducer(fake, { signTag: (l) => l })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(warnings.length, 1, 'the deprecated signTag warns once')
  t.throws(() => laneProducer(fake, { signing: { keys: [KEY] }, signTag: (l) => l }), { code: errorCodes.BAD_OPTION, message: /"signTag": give signing or signTag \(deprecated\), not both/ })
})

t.test('discovery that cannot answer at start: FLOWTAG_MQ_DISCOVERY, not a broker error', async (t) => {
  const discovery = { instances: async () => { throw new Error('Nacos unreachable and no snapshot') }, subscribe: () => () => {} }
  const core = new ConsumerCore(consumerOptionsSchema.parse({ service: 'w', discovery }), 'k', { system: 'kafka', destination: 'd', group: 'g' })
  await t.rejects(core.startWatch(), { code: errorCodes.DISCOVERY, message: /could not read the consumers of service "w" from discovery: Nacos unreachable/ })
  core.close()
})

t.test('the stable lane is pinned when a consumer starts; strictness stays live', async (t) => {
  const rules: { cfg?: { stable: string, strict?: boolean } } = {}
  const core = new ConsumerCore(consumerOptionsSchema.parse({ service: 'w', discovery: new StaticDiscovery({}), lane: 'v1', stableLane: 'v1', lanes: () => rules.cfg }), 'k', { system: 'kafka', destination: 'd', group: 'g' })
  core.pin()
  t.ok(core.stable)
  rules.cfg = { stable: 'v2', strict: true }
  t.same(core.policy, { stable: 'v1', strict: true }, 'a promotion in the rules does not move a running consumer\'s stable lane')
  t.ok(core.stable, 'it keeps handling untagged messages until it restarts')
  t.equal(core.verdict({}).handle, true)
  core.close()
})

t.test('metrics: one SDK call per message (the histogram); message counts observed at collection', async (t) => {
  // a Meter that counts what reaches the SDK: every add/record hashes its attributes there
  const calls = { add: 0, record: 0 }
  const observed: Array<{ value: number, attrs: Record<string, unknown> }> = []
  const callbacks: Array<(r: { observe: (v: number, a: Record<string, unknown>) => void }) => void> = []
  const meter = {
    createHistogram: () => ({ record: () => { calls.record++ } }),
    createCounter: () => ({ add: () => { calls.add++ } }),
    createObservableCounter: () => ({ addCallback: (cb: (typeof callbacks)[number]) => { callbacks.push(cb) } }),
    createObservableGauge: () => ({ addCallback: () => {} })
  }
  const m = new ConsumerMetrics({ system: 'kafka', destination: 'orders', group: 'g', version: 'v1' }, meter as never)
  for (let i = 0; i < 100; i++) m.handled(i % 2 === 0 ? 'v2' : undefined, 0.001, i % 2 === 0)
  m.failed('v2', 0.001, true, Object.assign(new Error('x'), { code: 'E_DB' }))
  m.skipped('v3')
  t.same(calls, { add: 0, record: 101 }, 'a histogram record per handled or failed message, no counter add')
  for (const cb of callbacks) cb({ observe: (value, attrs) => observed.push({ value, attrs }) })
  const find = (outcome: string, lane: string) => observed.find((o) => o.attrs['flowtag.mq.outcome'] === outcome && o.attrs['flowtag.lane'] === lane)
  t.match(find('handled', 'v2'), { value: 50, attrs: { 'flowtag.mq.fallback': true, 'messaging.consumer.group.name': 'g', 'flowtag.version': 'v1' } })
  t.match(find('handled', 'none'), { value: 50, attrs: { 'flowtag.mq.fallback': false } })
  t.match(find('failed', 'v2'), { value: 1, attrs: { 'error.type': 'E_DB' } })
  t.match(find('skipped', 'v3'), { value: 1 })
  t.notOk('flowtag.mq.fallback' in (find('skipped', 'v3')?.attrs ?? {}), 'skipped counts carry no fallback attribute, as before')
})

t.test('a consumer reads only the lane headers, as carrierOf would give them', async (t) => {
  const reader = new FlowReader('always', false)
  const cases: Array<[string, Record<string, unknown>, string | undefined, boolean]> = [
    ['mixed-case name, Buffer value', { 'X-Flow-Tag': Buffer.from('v2'), other: Buffer.from('x'), traceparnt: 'y' }, 'v2', false],
    ['baggage only', { Baggage: 'flowtag.lane=v3,tenant=acme', 'content-type': 'json' }, 'v3', false],
    ['a repeated lane header counts as absent, refused', { 'x-flow-tag': [Buffer.from('v2'), 'v3'] }, undefined, true],
    ['a single-element array', { 'x-flow-tag': ['v2'] }, 'v2', false],
    ['values that are not text are left out', { 'x-flow-tag': 42, baggage: [7] }, undefined, false],
    ['no headers', {}, undefined, false]
  ]
  for (const [name, headers, tag, refused] of cases) {
    const r = reader.read(headers)
    t.equal(r.flow.tag, tag, name)
    t.equal(r.refused, refused, `${name}: refused`)
    const all = carrierOf(headers)
    const { flow } = reader.read(Object.fromEntries(Object.entries(all).filter(([k]) => k === 'x-flow-tag' || k === 'baggage')))
    t.equal(flow.tag, tag, `${name}: the same as from carrierOf`)
  }
  t.equal(reader.read(undefined).flow.tag, undefined)
})

t.test('FlowReader: a plain lane is decided once per distinct header value; refusals still counted per message', async (t) => {
  const debug: unknown[] = []
  const reader = new FlowReader('always', false, { debug: (o: unknown) => { debug.push(o) }, warn: () => {} })
  const first = reader.read({ 'x-flow-tag': 'v2', baggage: 'flowtag.lane=v2,tenant=acme' })
  first.flow.baggage.added = 'by-the-handler'
  const second = reader.read({ 'x-flow-tag': Buffer.from('v2'), baggage: Buffer.from('flowtag.lane=v2,tenant=acme') })
  t.same(second, { flow: { tag: 'v2', decision: { tag: 'v2', reason: 'trusted incoming tag' }, baggage: { tenant: 'acme' } }, refused: false }, 'the same flow again, its own copy')
  t.not(second.flow, first.flow, 'each message its own flow object')
  // a lane honoured while another part of the headers was refused: the refusal is logged for every message
  for (let i = 0; i < 3; i++) t.equal(reader.read({ 'x-flow-tag': 'v2', baggage: 'flowtag.lane=bad lane!' }).flow.tag, 'v2')
  t.equal(debug.length, 3, 'a refusal is logged (and counted) per message, never remembered away')
  // many distinct values (a baggage member per request): the memory stays bounded and right
  for (let i = 0; i < 600; i++) t.equal(reader.read({ 'x-flow-tag': `v${i % 300}`, baggage: `req=${i}` }).flow.baggage.req, String(i))
  // no two header pairs share a memory: a malformed tag is never taken for a remembered pair
  t.equal(reader.read({ 'x-flow-tag': 'v2', baggage: 'flowtag.lane=v3\n' }).flow.tag, 'v2')
  t.same(reader.read({ 'x-flow-tag': 'v2\nflowtag.lane=v3' }), { flow: { baggage: {} }, refused: true }, 'a malformed tag: refused, whatever was read before')
  const never = new FlowReader('never', false)
  t.equal(never.read({ 'x-flow-tag': 'v2' }).refused, true)
  t.equal(never.read({ 'x-flow-tag': 'v2' }).refused, true, 'never: refused every time')
})

t.test('the lane policy is one object while it does not change (read per message)', async (t) => {
  const rules: { cfg?: { stable: string, strict?: boolean } } = {}
  const source = new PolicySource('w', () => rules.cfg, 'v1', 'permissive')
  const a = source.current()
  t.equal(source.current(), a, 'unchanged: the same object')
  rules.cfg = { stable: 'v1', strict: true }
  const b = source.current()
  t.same(b, { stable: 'v1', strict: true }, 'a change is seen at once')
  t.not(b, a)
  const fixed = new PolicySource('w', undefined, 'v1', 'strict')
  t.equal(fixed.current(), fixed.current(), 'no resolver: one policy for the consumer\'s life')
  t.same(fixed.current(), { stable: 'v1', strict: true })
  // pinned: a promotion moves the rules' stable lane, the running consumer keeps its own
  const core = new ConsumerCore(consumerOptionsSchema.parse({ service: 'w', discovery: new StaticDiscovery({}), stableLane: 'v1', lanes: () => rules.cfg }), 'k', { system: 'kafka', destination: 'd', group: 'g' })
  core.pin()
  rules.cfg = { stable: 'v2' }
  const p = core.policy
  t.same(p, { stable: 'v1', strict: false })
  t.equal(core.policy, p, 'the pinned policy is built once per change')
  rules.cfg = { stable: 'v2', strict: true }
  t.same(core.policy, { stable: 'v1', strict: true }, 'strictness still live')
  core.close()
})

t.test('metrics: the lag of a partition no longer read is forgotten', async (t) => {
  const m = new ConsumerMetrics({ system: 'kafka', destination: 'orders', group: 'g', version: 'v1' })
  m.lag('orders/0', 3)
  m.lag('orders/1', 0)
  m.clearLag('orders/0')
  t.same(m.stats.lag, { 'orders/1': 0 })
})

t.test('handle: a synchronous handler is counted at once, no promise; an async one when it settles; failures both ways', async (t) => {
  const core = new ConsumerCore(consumerOptionsSchema.parse({ service: 'w', discovery: new StaticDiscovery({}), stableLane: 'v1' }), 'k', { system: 'kafka', destination: 'd', group: 'g' })
  const v = core.verdict({ 'x-flow-tag': 'v2' })
  let inFlow: string | undefined
  t.equal(core.handle(v, () => { inFlow = currentTag() }), undefined, 'no promise for a handler that returns none')
  t.equal(inFlow, 'v2', 'run inside the message\'s flow')
  t.equal(core.metrics.stats.lanes.v2?.handled, 1, 'counted at once')
  t.throws(() => core.handle(v, () => { throw Object.assign(new Error('sync'), { code: 'E_SYNC' }) }), { code: 'E_SYNC' }, 'a synchronous throw is rethrown')
  const later = core.handle(v, async () => { await new Promise((resolve) => setTimeout(resolve, 5)); inFlow = currentTag() })
  t.equal(core.metrics.stats.lanes.v2?.handled, 1, 'an async handler is counted when it settles')
  await later
  t.equal(core.metrics.stats.lanes.v2?.handled, 2)
  await t.rejects(core.handle(v, async () => { throw new Error('async') }) as Promise<void>, { message: 'async' })
  t.same(core.metrics.stats.lanes.v2, { handled: 2, failed: 2, skipped: 0, fallback: 2 }, 'both failures counted; stable handled v2 (no live v2 consumer) as fallback')
  core.close()
})

t.test('producers: the lane headers of one send are built and signed once; a message with its own baggage gets its own', async (t) => {
  let signed = 0
  const signTag = (lane: string) => `${lane}~signed~${++signed}`
  const sent: Array<{ messages: Array<{ value: string, headers?: Record<string, unknown> }> }> = []
  const kafkajs = laneProducer({ send: async (r: never) => { sent.push(r) }, sendBatch: async () => {} } as never, { signTag })
  await runWithFlow({ tag: 'v2', baggage: {} }, () => kafkajs.send({ topic: 't', messages: [{ value: 'a' }, { value: 'b', headers: { own: 'kept', 'X-Flow-Tag': 'stale' } }, { value: 'c', headers: { baggage: 'tenant=acme' } }, { value: 'd' }] }))
  const [a, b, c, d] = sent[0]?.messages ?? []
  t.equal(signed, 2, 'signed once for the plain ones, once for the one with its own baggage')
  t.same(a?.headers, { 'x-flow-tag': 'v2~signed~1', baggage: 'flowtag.lane=v2' })
  t.same(b?.headers, { own: 'kept', 'x-flow-tag': 'v2~signed~1', baggage: 'flowtag.lane=v2' }, 'own headers kept, a stale lane header replaced')
  t.match(c?.headers, { 'x-flow-tag': 'v2~signed~2', baggage: /flowtag\.lane=v2/ })
  t.match(c?.headers?.baggage, /tenant=acme/, 'its own baggage merged')
  t.same(d?.headers, a?.headers)
  await kafkajs.send({ topic: 't', messages: [{ value: 'e' }] })
  t.equal(sent[1]?.messages[0]?.headers, undefined, 'outside a flow: nothing added')

  const pSent: Array<{ messages: Array<{ value: string, headers?: Map<unknown, unknown> }> }> = []
  const fake = { send: async (r: never) => { pSent.push(r) } } as unknown as Pick<PlatformaticProducer, 'send'>
  const platformatic = platformaticLaneProducer(fake, { signTag })
  signed = 0
  await runWithFlow({ tag: 'v3', baggage: {} }, () => platformatic.send({ messages: [{ topic: 't', value: 'a' }, { topic: 't', value: 'b', headers: new Map([[Buffer.from('baggage'), Buffer.from('tenant=acme')]]) }, { topic: 't', value: 'c', headers: { own: 'kept' } }] } as never))
  const text = (h: Map<unknown, unknown> | undefined) => Object.fromEntries([...(h ?? [])].map(([k, v]) => [String(k), String(v)]))
  const [pa, pb, pc] = pSent[0]?.messages ?? []
  t.equal(signed, 2, '@platformatic/kafka: signed once per send, and for the one with its own baggage')
  t.same(text(pa?.headers), { 'x-flow-tag': 'v3~signed~1', baggage: 'flowtag.lane=v3' })
  t.match(text(pb?.headers), { 'x-flow-tag': 'v3~signed~2', baggage: /tenant=acme/ })
  t.same(text(pc?.headers), { own: 'kept', 'x-flow-tag': 'v3~signed~1', baggage: 'flowtag.lane=v3' })
})
