// @Lane() outside HTTP reads the flow the handler runs in; LaneContext.run keeps the baggage.
import { currentFlow, runWithFlow } from '@flowtag/context'
import type { ExecutionContext } from '@nestjs/common'
import t from 'tap'
import { LaneContext } from '../src/index.ts'
import { laneOf } from '../src/lane.ts'

t.test('laneOf: the request\'s flow over HTTP, the current flow elsewhere', async (t) => {
  const http = { getType: () => 'http', getArgByIndex: (i: number) => i === 0 ? { flow: { tag: 'v2', baggage: {} } } : undefined } as unknown as ExecutionContext
  const rpc = { getType: () => 'rpc' } as unknown as ExecutionContext
  t.equal(laneOf(undefined, http), 'v2')
  t.equal(laneOf(undefined, rpc), undefined, 'outside a flow')
  t.equal(runWithFlow({ tag: 'v3', baggage: {} }, () => laneOf(undefined, rpc)), 'v3', 'a gRPC handler runs in its call\'s flow')
})

t.test('LaneContext.run in a flow: another lane, the same baggage', async (t) => {
  const lanes = new LaneContext()
  const seen = runWithFlow({ tag: 'v1', baggage: { tenant: 'acme' } }, () => lanes.run('v2', () => currentFlow()))
  t.same(seen, { tag: 'v2', baggage: { tenant: 'acme' } })
})
