// The lane's verdict from its services': one failure fails the lane; when a failure is passed up a
// call chain (order-service answers 500 because user-service does), the service that calls no
// other failing one is named as the cause.
import t from 'tap'
import type { Judgement } from '../src/index.ts'
import { laneJudgement, type ServiceJudgement } from '../src/lane.ts'
import { summarize } from '../src/window.ts'

const lane = summarize({ requests: 100, serverErrors: 0, networkErrors: 0, seconds: 1, buckets: [] })
const j = (verdict: Judgement['verdict'], reason: string): Judgement => ({ verdict, reason, candidate: lane, stable: lane, errorRateHigh: false, breaches: verdict === 'fail' ? [{ check: 'sequential.errorRate', value: 300, threshold: 200, action: 'rollback' }] : [] })
const s = (service: string, judgement: Judgement, callers: string[] = []): ServiceJudgement => ({ service, judgement, warming: [], callers })

t.test('the cause of a failure passed up a call chain is named', async (t) => {
  const v = laneJudgement([s('order-service', j('fail', 'errors 20%'), ['gateway']), s('user-service', j('fail', 'errors 20%'), ['order-service']), s('inventory-service', j('pass', 'ok'), ['order-service'])])
  t.equal(v.verdict, 'fail')
  t.equal(v.failing, 'user-service', 'order-service calls user-service: user-service is the cause')
  t.match(v.reason, /^user-service failed: errors 20%; order-service failed \(it calls user-service\): errors 20%$/)
  t.same(v.breaches.map((b) => b.service), ['user-service', 'order-service'], 'the cause first')
})

t.test('waiting and passing lanes', async (t) => {
  const waiting = laneJudgement([s('a', j('pass', 'fine')), s('b', j('waiting', '3 of 100')), s('c', j('waiting', 'warming: c 1.2.3.4:5 (3 s of 60 s); latency not judged until warm (x)'))])
  t.equal(waiting.verdict, 'waiting')
  t.equal(waiting.reason, 'warming: c 1.2.3.4:5 (3 s of 60 s); latency not judged until warm (x); b: 3 of 100', 'a warming service first, as `waiting: warming ...`')
  const pass = laneJudgement([s('a', j('pass', 'fine')), s('b', j('pass', 'good'))])
  t.equal(pass.verdict, 'pass')
  t.equal(pass.reason, 'a: fine; b: good')
  const one = j('fail', 'alone')
  t.same(laneJudgement([s('a', one)]), { ...one, failing: 'a' }, 'one failing service: its judgement, and it is named as failing')
  const fine = j('pass', 'fine')
  t.equal(laneJudgement([s('a', fine)]), fine, 'one passing service: its judgement unchanged')
})
